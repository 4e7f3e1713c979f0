//! `sync_share`: a fast, safe azcopy-sync equivalent between local folders, Azure Files and
//! Azure Blob.
//!
//! The engine ([`engine`]) lists both sides concurrently — Blob→Blob as two flat listings merged
//! page by page ([`flat`]), every other pair one directory at a time, breadth first — and streams
//! what to copy into a bounded pool of transfers; endpoints ([`endpoint`]) are parsed from what an
//! operator types or from a config share; [`store`] hides which service an endpoint is. See
//! `docs/sync.md` for the semantics and the guards of a mirror.

pub mod azure_names;
pub mod blob;
pub mod cli;
pub mod endpoint;
pub mod engine;
pub mod entry;
pub mod files;
pub mod filter;
pub mod flat;
pub mod local;
pub mod op_error;
pub mod options;
pub mod progress;
pub mod sas;
pub mod store;
pub mod summary;

pub use cli::{SyncArgs, run_cli};
pub use endpoint::{Credential, Endpoint};
pub use engine::{sync, sync_report};
pub use options::{Compare, MaxDelete, SyncMode, SyncOptions};
pub use progress::{Observer, Printer, Quiet, SyncEvent};
pub use summary::SyncSummary;
