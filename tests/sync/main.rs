//! The sync engine: local folders, the Azure Files emulator, Azurite, azcopy as the independent client, and no SAS in any output.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a test or benchmark reports on its own terminal

pub use drscript_test_support::test;

mod azure_sync;
mod sas_in_errors;
mod sync_azcopy;
mod sync_blob;
mod sync_files;
mod sync_local;
