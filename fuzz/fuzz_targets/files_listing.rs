#![no_main]
//! The Azure Storage listing reader: Files' List Directories and Files, and the same XML read
//! as Blob's List Blobs (with metadata): parsed or refused, never a panic.

use drscript_sync::listing_xml::{self, Shape};
use libfuzzer_sys::fuzz_target;

const BLOBS: Shape =
    Shape { list: "Blobs", kinds: &["Blob", "BlobPrefix"], properties: &["Content-Length", "Last-Modified", "Content-MD5"] };

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = drscript_sync::azure_files::listing::parse(text);
        let _ = listing_xml::read(text, &BLOBS);
    }
});
