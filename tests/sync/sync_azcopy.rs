//! Cross-check of the Azure Files emulator with the real azcopy: what azcopy copies into and out
//! of the emulator must match what drscript does.
//! Needs tests/support/requirements-sync.sh (azcopy from npm in <repo>/.tools/npm).

use drscript_test_support::sync_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use drscript_sandbox::azure_files;
use drscript_sync::azure_files::auth::account_sas;
use drscript_sync::{Endpoint, SyncOptions};
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
        args.iter().map(drscript_base::redact::redacted).collect::<Vec<_>>(),
        drscript_base::redact::redacted(&text)
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

/// Names as azcopy sees them on the emulator: two uploads whose names differ only in case land
/// on one file in the first-written case, and a trailing dot azcopy asks to keep
/// (`x-ms-allow-trailing-dot: true`) is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azcopy_sees_names_case_insensitive_and_case_preserving() {
    let (store, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = azure_files::start(store.path(), &[(ACCOUNT, KEY)]).await.unwrap();
    std::fs::create_dir_all(store.path().join(ACCOUNT).join("names")).unwrap();
    write_tree(first.path(), &[("conf/App.xml", b"first"), ("notes.", b"dot")]);
    write_tree(second.path(), &[("CONF/app.XML", b"second, longer")]);
    let sas = account_sas(ACCOUNT, KEY, "rwdlacup", chrono::Utc::now() + chrono::Duration::hours(2));
    let url = format!("http://{}/{ACCOUNT}/names?{sas}", emu.addr);
    for src in [first.path(), second.path()] {
        let glob = format!("{}/*", src.display());
        run_azcopy(&["copy", &glob, &url, "--recursive", "--from-to=LocalFile"], home.path());
    }
    let share = store.path().join(ACCOUNT).join("names");
    let on_share: Vec<String> = contents(&share).into_keys().collect();
    assert_eq!(on_share, vec!["conf/App.xml".to_string(), "notes.".to_string()]);
    assert_eq!(std::fs::read(share.join("conf/App.xml")).unwrap(), b"second, longer");
    // azcopy downloads the one file under the preserved case.
    let back = tempfile::tempdir().unwrap();
    let all = format!("http://{}/{ACCOUNT}/names/*?{sas}", emu.addr);
    run_azcopy(&["copy", &all, back.path().to_str().unwrap(), "--recursive", "--from-to=FileLocal"], home.path());
    assert_eq!(contents(back.path()), contents(&share));
    emu.stop().await;
}

/// The RabbitMQ copy's `compare: "mirror-mode"` against `azcopy sync --mirror-mode=true
/// --delete-destination=true` on two equal destinations: file by file, both end the same. The
/// cases that tell the rules apart: a file of the same size and time but other bytes (only an
/// overwrite of every file present on both sides replaces it), a destination file newer than its
/// source, one only at the destination (deleted), one only at the source (copied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_mode_overwrites_and_deletes_file_by_file_as_azcopy_does() {
    let (store, s, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = azure_files::start(store.path(), &[(ACCOUNT, KEY)]).await.unwrap();
    write_tree(
        s.path(),
        &[
            ("same.bin", b"identical"),
            ("samesize.bin", b"source-v2"),
            ("dstnewer.bin", b"from the source"),
            ("q/new.idx", b"only at the source"),
        ],
    );
    let dest_state: &[(&str, &[u8])] = &[
        ("same.bin", b"identical"),
        ("samesize.bin", b"stale--v1"),
        ("dstnewer.bin", b"newer at the destination"),
        ("q/extra.idx", b"only at the destination"),
    ];
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for share in ["byazcopy", "bydrscript"] {
        let root = store.path().join(ACCOUNT).join(share).join("rmq");
        write_tree(&root, dest_state);
        for (rel, _) in dest_state {
            let f = std::fs::OpenOptions::new().write(true).open(root.join(rel)).unwrap();
            f.set_modified(if *rel == "dstnewer.bin" { t + std::time::Duration::from_secs(1800) } else { t }).unwrap();
        }
    }
    for rel in ["same.bin", "samesize.bin", "dstnewer.bin", "q/new.idx"] {
        std::fs::OpenOptions::new().write(true).open(s.path().join(rel)).unwrap().set_modified(t).unwrap();
    }
    let sas = account_sas(ACCOUNT, KEY, "rwdlacup", chrono::Utc::now() + chrono::Duration::hours(2));

    let az_url = format!("http://{}/{ACCOUNT}/byazcopy/rmq?{sas}", emu.addr);
    run_azcopy(
        &[
            "sync",
            s.path().to_str().unwrap(),
            &az_url,
            "--recursive",
            "--mirror-mode=true",
            "--delete-destination=true",
            "--from-to=LocalFile",
        ],
        home.path(),
    );
    let dr = Endpoint::parse(&format!("files+http://{}/{ACCOUNT}/bydrscript/rmq?{sas}", emu.addr)).unwrap();
    let opts = SyncOptions {
        mirror: true,
        compare: drscript_sync::Compare::MirrorMode,
        max_delete: drscript_sync::MaxDelete::Percent(100.0),
        ..SyncOptions::default()
    };
    let sum = run(&local(s.path()), &dr, &opts).await.unwrap();
    assert_eq!((sum.copied, sum.deleted), (4, 1), "{sum:?}");

    let by_azcopy = contents(&store.path().join(ACCOUNT).join("byazcopy/rmq"));
    let by_drscript = contents(&store.path().join(ACCOUNT).join("bydrscript/rmq"));
    assert_eq!(by_azcopy, contents(s.path()), "azcopy's mirror-mode did not end equal to its source");
    for (rel, want) in &by_azcopy {
        assert_eq!(by_drscript.get(rel), Some(want), "{rel}: drscript differs from azcopy");
    }
    assert_eq!(by_drscript.len(), by_azcopy.len(), "{by_drscript:?}");

    // The old "differs" rule leaves a file of the same size and time alone: the difference.
    write_tree(&store.path().join(ACCOUNT).join("bydrscript/rmq"), &[("samesize.bin", b"stale--v1")]);
    let p = store.path().join(ACCOUNT).join("bydrscript/rmq/samesize.bin");
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_modified(t).unwrap();
    let differs = SyncOptions { compare: drscript_sync::Compare::Differs, ..opts.clone() };
    assert_eq!(run(&local(s.path()), &dr, &differs).await.unwrap().copied, 0);
    assert_eq!(run(&local(s.path()), &dr, &opts).await.unwrap().copied, 4);
    assert_eq!(std::fs::read(&p).unwrap(), b"source-v2");
    emu.stop().await;
}
