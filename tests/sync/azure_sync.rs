//! The storage clients against what real accounts hold:
//! - Azure Files → Azure Files with account keys in the config runs server-side (Put Range From
//!   URL with a read SAS minted from the source's key), so no file content passes through this
//!   machine; the Files emulator counts the Get File requests that returned content.
//! - Blob (Azurite): a mirror deletes blobs that have snapshots; hierarchical-namespace folder
//!   markers (`hdi_isfolder=true`) are folders, not files.
//! - No SAS in any output when either service fails ([`sas_in_errors`]).

use drscript_test_support::sync_common;
#[allow(dead_code)]
use std::process::Command;

use drscript_sandbox::azure_files;
use drscript_sync::{Endpoint, SyncOptions};
use sync_common::azurite::{ACCOUNT, Azurite};
use sync_common::*;

const PROD: &str = "prodacct";
const DR: &str = "dracct";
const PROD_KEY: &str = "cHJvZC1hY2NvdW50LWtleS1mb3ItdGhlLWtleS1jb3B5LXRlc3QtMDEyMzQ1Njc4OQ==";
const DR_KEY: &str = "ZHItYWNjb3VudC1rZXktZm9yLXRoZS1rZXktY29weS10ZXN0LTAxMjM0NTY3ODlhYg==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_configured_files_to_files_sync_reads_no_content_through_this_machine() {
    let store = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let emu = azure_files::start(store.path(), &[(PROD, PROD_KEY), (DR, DR_KEY)]).await.unwrap();
    let source = store.path().join(PROD).join("app/web");
    std::fs::create_dir_all(source.join("sub")).unwrap();
    std::fs::create_dir_all(store.path().join(DR).join("app")).unwrap();
    // Several files, one larger than a 4 MiB range, one empty.
    let big: Vec<u8> = (0..9_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(source.join("big.bin"), &big).unwrap();
    std::fs::write(source.join("empty.txt"), b"").unwrap();
    for i in 0..12 {
        std::fs::write(source.join(format!("sub/f{i}.xml")), format!("<doc n=\"{i}\"/>").repeat(i + 1)).unwrap();
    }
    let config = format!(
        "[environments.prod]\nnamespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"https://prod.example.com\"\n\
         [environments.prod.shares]\napp = {{ url = \"files+http://{addr}/{PROD}/app\", account_key_env = \"PROD_KEY\" }}\n\n\
         [environments.dr]\nnamespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"https://dr.example.com\"\n\
         [environments.dr.shares]\napp = {{ url = \"files+http://{addr}/{DR}/app\", account_key_env = \"DR_KEY\" }}\n",
        addr = emu.addr
    );
    std::fs::write(work.path().join("drscript.toml"), &config).unwrap();

    let reads = emu.content_reads();
    let dir = work.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_drscript"))
            .current_dir(&dir)
            .args(["sync", "prod.shares.app/web", "dr.shares.app/web", "--json"])
            .env("PROD_KEY", PROD_KEY)
            .env("DR_KEY", DR_KEY)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "sync failed:\n{stdout}\n{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["copied"], 14, "{summary}");
    assert_eq!(summary["server_side"], 14, "every file copied server-side: {summary}");
    assert_eq!(emu.content_reads(), reads, "file content was read through this machine");

    let copied = store.path().join(DR).join("app/web");
    assert_eq!(std::fs::read(copied.join("big.bin")).unwrap(), big);
    assert_eq!(std::fs::read(copied.join("sub/f11.xml")).unwrap(), std::fs::read(source.join("sub/f11.xml")).unwrap());
    assert_eq!(std::fs::metadata(copied.join("empty.txt")).unwrap().len(), 0);
    for text in [&stdout, &stderr] {
        assert!(!text.contains(PROD_KEY) && !text.contains(DR_KEY), "a key leaks:\n{text}");
        assert!(text.matches("sig=").count() == text.matches("sig=***").count(), "a signature leaks:\n{text}");
    }
}

/// Put Blob through Azurite with optional metadata.
async fn put_blob(az: &Azurite, name: &str, body: &[u8], meta: &[(&str, &str)]) {
    let url = format!("http://127.0.0.1:{}/{ACCOUNT}/{name}?{}", az.port, az.sas());
    let mut req = reqwest::Client::new()
        .put(&url)
        .header("x-ms-version", "2025-01-05")
        .header("x-ms-blob-type", "BlockBlob")
        .header("content-length", body.len())
        .body(body.to_vec());
    for (k, v) in meta {
        req = req.header(format!("x-ms-meta-{k}"), *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201, "put {name}: {}", r.text().await.unwrap_or_default());
}

/// Snapshot Blob; returns the snapshot's timestamp.
async fn snapshot(az: &Azurite, name: &str) -> String {
    let url = format!("http://127.0.0.1:{}/{ACCOUNT}/{name}?comp=snapshot&{}", az.port, az.sas());
    let r = reqwest::Client::new().put(&url).header("x-ms-version", "2025-01-05").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201, "snapshot {name}");
    r.headers()["x-ms-snapshot"].to_str().unwrap().to_string()
}

/// Delete Blob as a client that does not mention snapshots: what Azure answers for a blob that
/// has some.
async fn plain_delete_status(az: &Azurite, name: &str) -> u16 {
    let url = format!("http://127.0.0.1:{}/{ACCOUNT}/{name}?{}", az.port, az.sas());
    let r = reqwest::Client::new().delete(&url).header("x-ms-version", "2025-01-05").send().await.unwrap();
    r.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_deletes_blobs_that_have_snapshots() {
    let az = Azurite::start(false);
    az.container("snaps").await;
    put_blob(&az, "snaps/mq/keep.txt", b"keep", &[]).await;
    put_blob(&az, "snaps/mq/old.txt", b"old", &[]).await;
    put_blob(&az, "snaps/mq/older.txt", b"older", &[]).await;
    snapshot(&az, "snaps/mq/old.txt").await;
    snapshot(&az, "snaps/mq/older.txt").await;
    // Without the header the service refuses: this is what the mirror must not run into.
    assert_eq!(plain_delete_status(&az, "snaps/mq/older.txt").await, 409, "Azurite refuses like Azure");

    let src = tempfile::tempdir().unwrap();
    write_tree(src.path(), &[("keep.txt", b"keep")]);
    set_mtime(&src.path().join("keep.txt"), 86_400 * 30);
    let dst = Endpoint::parse(&az.url("snaps/mq")).unwrap();
    let opts = SyncOptions { max_delete: drscript_sync::MaxDelete::Count(2), ..mirror() };
    let sum = run(&local(src.path()), &dst, &opts).await.unwrap();
    assert_eq!(sum.deleted, 2, "{sum:?}");
    // Base blobs and their snapshots are gone (a flat listing shows base blobs only).
    assert_eq!(az.blobs("snaps").await, vec!["mq/keep.txt".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hierarchical_namespace_folder_markers_are_folders_not_files() {
    let az = Azurite::start(false);
    az.container("lake").await;
    // As Data Lake Storage lists them through the Blob endpoint: a marker per directory.
    put_blob(&az, "lake/web", b"", &[("hdi_isfolder", "true")]).await;
    put_blob(&az, "lake/web/a.txt", b"alpha", &[]).await;
    put_blob(&az, "lake/web/sub", b"", &[("hdi_isfolder", "true")]).await;
    put_blob(&az, "lake/web/sub/b.txt", b"beta", &[]).await;
    put_blob(&az, "lake/web/empty", b"", &[("hdi_isfolder", "true")]).await;

    let out = tempfile::tempdir().unwrap();
    let src = Endpoint::parse(&az.url("lake/web")).unwrap();
    let sum = run(&src, &local(out.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!((sum.copied, sum.failures.len()), (2, 0), "{sum:?}");
    let files: Vec<String> = contents(out.path()).into_keys().collect();
    assert_eq!(files, vec!["a.txt".to_string(), "sub/b.txt".to_string()]);
    assert!(out.path().join("sub").is_dir());
    assert!(!out.path().join("empty").is_file(), "a marker is not a zero-length file");

    // As a destination: a mirror does not take the markers for stray files to delete.
    let back = tempfile::tempdir().unwrap();
    write_tree(back.path(), &[("a.txt", b"alpha"), ("sub/b.txt", b"beta")]);
    let dst = Endpoint::parse(&az.url("lake/web")).unwrap();
    let dry = report(&local(back.path()), &dst, &mirror(), drscript_sync::SyncMode::DryRun).await;
    assert!(dry.planned_deletions.is_empty(), "{:?}", dry.planned_deletions);

    // Blob→Blob: the first marker ("empty", after "a.txt" was already queued) hands the flat
    // merge over to the folder walk, which counts every file once.
    az.container("lake2").await;
    let copy = Endpoint::parse(&az.url("lake2/web")).unwrap();
    let paged = SyncOptions { list_page_size: 1, ..mirror() };
    let dry = report(&src, &copy, &paged, drscript_sync::SyncMode::DryRun).await;
    let planned: Vec<&str> = dry.planned_copies.iter().map(|i| i.path.as_str()).collect();
    assert_eq!((planned, dry.copied, dry.source_files), (vec!["a.txt", "sub/b.txt"], 2, 2), "{dry:?}");
    let sum = run(&src, &copy, &paged).await.unwrap();
    assert_eq!((sum.copied, sum.skipped, sum.source_files, sum.failures.len()), (2, 0, 2, 0), "{sum:?}");
    assert_eq!(az.blobs("lake2").await, vec!["web/a.txt".to_string(), "web/sub/b.txt".to_string()]);
}
