//! What drscript's integration tests share, kept apart from the crates they test (as cargo keeps
//! `cargo-test-support`): finding the built binary, a sandbox in its own process driven through
//! it ([`world`]), a builder around one invocation ([`mod@test`]), real servers started for a test
//! (BIND in [`bind`], PostgreSQL and MariaDB in [`servers`], Azurite in [`sync_common::azurite`]),
//! independent clients (kubectl and the official Python client in [`clients`]), certificates
//! ([`certs`]), and harnesses that call core's clients directly ([`harness`], [`arm`]).
//!
//! A dev-dependency only: no crate of the product depends on it.
#![allow(clippy::print_stdout, clippy::print_stderr)] // helpers report on the test's terminal

use std::path::PathBuf;
use std::sync::LazyLock;

pub mod arm;
pub mod bind;
pub mod certs;
pub mod clients;
pub mod harness;
pub mod servers;
pub mod sync_common;
pub mod test;
pub mod world;

/// The repository's root folder.
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The built `drscript` binary: the one the test runner names (nextest's
/// `NEXTEST_BIN_EXE_drscript`, cargo's `CARGO_BIN_EXE_drscript`), else the one beside the test
/// executable's folder (`target/debug/deps/TEST` → `target/debug/drscript`).
pub static BIN: LazyLock<PathBuf> = LazyLock::new(|| {
    for var in ["NEXTEST_BIN_EXE_drscript", "CARGO_BIN_EXE_drscript"] {
        if let Some(path) = std::env::var_os(var) {
            return PathBuf::from(path);
        }
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let bin = exe.parent().and_then(|deps| deps.parent()).expect("target/PROFILE/deps").join("drscript");
    assert!(bin.is_file(), "no drscript binary at {} (build it with `cargo build`)", bin.display());
    bin
});
