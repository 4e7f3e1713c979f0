//! Cross-check of the Azure Files emulator with the real azcopy: what azcopy copies into and out
//! of the emulator must match what drscript does.
//! Needs tests/support/requirements-sync.sh (azcopy from npm in <repo>/.tools/npm).

mod sync_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use drscript::azure_files::auth::account_sas;
use drscript::sandbox::azure_files;
use drscript::sync::{Endpoint, SyncOptions};
use sync_common::*;

const ACCOUNT: &str = "azcopyacct";
const KEY: &str = "YXpjb3B5LWNyb3NzLWNoZWNrLWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2hpams=";

fn azcopy() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".tools/npm/node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64");
    assert!(p.exists(), "azcopy is missing at {}: run tests/support/requirements-sync.sh", p.display());
    p
}

fn run_azcopy(args: &[&str], home: &Path) -> String {
    let out = Command::new(azcopy())
        .args(args)
        .env("AZCOPY_LOG_LOCATION", home.join("logs"))
        .env("AZCOPY_JOB_PLAN_LOCATION", home.join("plans"))
        .env("HOME", home)
        .output()
        .unwrap();
    let mut text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        // The job log says which request failed and why.
        for e in std::fs::read_dir(home.join("logs")).into_iter().flatten().flatten() {
            let log = std::fs::read_to_string(e.path()).unwrap_or_default();
            let _ = std::fs::write(std::env::temp_dir().join("azcopy-last-failure.log"), &log);
            for line in log.lines().filter(|l| !l.contains("SUCCESSFULLY")).take(400) {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    assert!(
        out.status.success(),
        "azcopy {:?} failed:\n{}",
        args.iter().map(drscript::redact::redacted).collect::<Vec<_>>(),
        drscript::redact::redacted(&text)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azcopy_and_drscript_agree_on_the_emulator() {
    let (store, s, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = azure_files::start(store.path(), &[(ACCOUNT, KEY)]).await.unwrap();
    for share in ["byazcopy", "bydrscript"] {
        std::fs::create_dir_all(store.path().join(ACCOUNT).join(share)).unwrap();
    }
    generate(s.path(), 40, 11);
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 239) as u8).collect();
    std::fs::write(s.path().join("d2/big.bin"), &big).unwrap();
    let sas = account_sas(ACCOUNT, KEY, "rwdlacup", chrono::Utc::now() + chrono::Duration::hours(2));

    // Into the emulator: azcopy on one share, drscript on the other.
    let az_url = format!("http://{}/{ACCOUNT}/byazcopy/tree?{sas}", emu.addr);
    let src_glob = format!("{}/*", s.path().display());
    run_azcopy(&["copy", &src_glob, &az_url, "--recursive", "--from-to=LocalFile"], home.path());
    let dr = Endpoint::parse(&format!("files+http://{}/{ACCOUNT}/bydrscript/tree?{sas}", emu.addr)).unwrap();
    run(&local(s.path()), &dr, &SyncOptions::default()).await.unwrap();
    let by_azcopy = contents(&store.path().join(ACCOUNT).join("byazcopy/tree"));
    assert_eq!(by_azcopy, contents(s.path()));
    assert_eq!(by_azcopy, contents(&store.path().join(ACCOUNT).join("bydrscript/tree")));

    // drscript reads what azcopy wrote, and azcopy reads what drscript wrote.
    let back_dr = tempfile::tempdir().unwrap();
    let azcopied = Endpoint::parse(&format!("files+http://{}/{ACCOUNT}/byazcopy/tree?{sas}", emu.addr)).unwrap();
    run(&azcopied, &local(back_dr.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!(contents(back_dr.path()), contents(s.path()));
    let back_az = tempfile::tempdir().unwrap();
    let dr_url = format!("http://{}/{ACCOUNT}/bydrscript/tree/*?{sas}", emu.addr);
    // azcopy checks every download against the Content-MD5 drscript set, and fails on a missing one.
    let check = "--check-md5=FailIfDifferentOrMissing";
    run_azcopy(
        &["copy", &dr_url, back_az.path().to_str().unwrap(), "--recursive", "--from-to=FileLocal", check],
        home.path(),
    );
    assert_eq!(contents(back_az.path()), contents(s.path()));
    emu.stop().await;
}
