#![no_main]
//! The Azure Files listing parser (List Directories and Files XML): parsed or refused.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = drscript::azure_files::listing::parse(text);
    }
});
