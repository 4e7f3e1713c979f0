//! A small Azure Files REST client (reqwest): the operations a sync needs, with SAS and Shared Key
//! authentication. The Azure SDK for Rust has no Files crate; the REST surface used here is small
//! and documented (List Directories and Files, Get File Properties, Create Directory/File,
//! Put Range, Put Range From URL, Set File Properties, Delete File/Directory).

pub mod auth;
pub mod client;
pub mod listing;

pub use client::{FilesClient, FilesError};

/// The REST API version sent with every request (and signed into the SAS drscript mints).
///
/// The operations need at least 2021-06-08: that version made `x-ms-file-last-write-time:
/// preserve` valid on Put Range and Put Range From URL (a copy in ranges must not stamp the file
/// with the copy's time) and the SMB headers of Create File optional. Timestamps in listings
/// (`include=Timestamps`) need 2020-04-08. Nothing newer changes these calls for SMB shares.
/// 2025-05-05 is the newest version Microsoft lists as enabled in every region ("Versioning for
/// Azure Storage", 2025): 2025-07-05 and 2025-11-05 are not yet everywhere, and a version a
/// region lacks is refused there with an `x-ms-version` mismatch, so going newer gains nothing
/// and risks every request of a DR run.
pub const API_VERSION: &str = "2025-05-05";
/// The largest range one Put Range (From URL) may write.
pub const MAX_RANGE: u64 = 4 * 1024 * 1024;
