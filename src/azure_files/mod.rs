//! A small Azure Files REST client (reqwest): the operations a sync needs, with SAS and Shared Key
//! authentication. The Azure SDK for Rust has no Files crate; the REST surface used here is small
//! and documented (List Directories and Files, Get File Properties, Create Directory/File,
//! Put Range, Put Range From URL, Set File Properties, Delete File/Directory).

pub mod auth;
pub mod client;
pub mod listing;

pub use client::{FilesClient, FilesError};

/// The REST API version sent with every request.
pub const API_VERSION: &str = "2023-11-03";
/// The largest range one Put Range (From URL) may write.
pub const MAX_RANGE: u64 = 4 * 1024 * 1024;
