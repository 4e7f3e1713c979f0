//! Temporary home of the Azure Files emulator's module path while `src/sandbox/mod.rs` is written
//! on another branch: the lead moves `pub mod azure_files;` into `sandbox/mod.rs` and deletes
//! this file.

#[path = "sandbox/azure_files/mod.rs"]
pub mod azure_files;
