//! `sync_share`: a fast, safe azcopy-sync equivalent between local folders, Azure Files and
//! Azure Blob.
//!
//! The engine ([`engine`]) lists both sides concurrently — Blob→Blob as two flat listings merged
//! page by page ([`flat`]), every other pair one directory at a time, breadth first — and streams
//! what to copy into a bounded pool of transfers; endpoints ([`endpoint`]) are parsed from what an
//! operator types or from a config share; [`store`] hides which service an endpoint is. See
//! `docs/sync.md` for the semantics and the guards of a mirror.
//!
//! The crate also holds the small Azure Files REST client ([`azure_files`]) and the reader of
//! Azure Storage's listing XML ([`listing_xml`]) that the Files and Blob backends share.
//!
//! It may import `drscript-base` only: it reads no configuration (the caller resolves a share
//! into an [`Endpoint`]), has no command line, and prints nothing (progress goes to an
//! [`Observer`]).

pub mod azure_files;
pub mod azure_names;
pub mod blob;
pub mod endpoint;
pub mod engine;
pub mod entry;
pub mod files;
pub mod filter;
pub mod flat;
pub mod http;
pub mod listing_xml;
pub mod local;
pub mod op_error;
pub mod options;
pub mod progress;
pub mod sas;
pub mod store;
pub mod summary;

pub use endpoint::{Endpoint, STORAGE_SCOPE, StorageCredential};
pub use engine::{sync, sync_report};
pub use options::{Compare, MaxDelete, SyncMode, SyncOptions};
pub use progress::{Observer, Quiet, SyncEvent};
pub use summary::SyncSummary;

pub use drscript_base::{Error, Result};
