//! Azure Blob through the SDK against Azurite: local ↔ blob, blob ↔ blob streamed (plain
//! Azurite answers Put Blob From URL with NotImplemented) and server-side (with the preload that
//! routes Put Blob From URL to Azurite's Copy Blob From URL), mirror on blob, hash compare.
//! Needs tests/support/requirements-sync.sh (node, azurite in <repo>/.tools/npm).

mod sync_common;

use drscript::sync::{Compare, Endpoint, MaxDelete, SyncMode, SyncOptions};
use sync_common::azurite::Azurite;
use sync_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_to_blob_to_blob_to_local_streamed_when_azurite_cannot_copy_from_url() {
    let az = Azurite::start(false);
    az.container("prod").await;
    az.container("drc").await;
    let (s, back) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(s.path(), 60, 5);
    let big: Vec<u8> = (0..9_500_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(s.path().join("d3/big.bin"), &big).unwrap();
    set_mtime(&s.path().join("d3/big.bin"), 86_400 * 7);

    let prod = Endpoint::parse(&az.url("prod/web")).unwrap();
    let sum = run(&local(s.path()), &prod, &SyncOptions::default()).await.unwrap();
    assert_eq!(sum.copied, 61, "{sum:?}");
    let again = run(&local(s.path()), &prod, &SyncOptions::default()).await.unwrap();
    assert_eq!((again.copied, again.skipped), (0, 61), "the mtime metadata makes the re-sync a no-op");

    let dr = Endpoint::parse(&az.url("drc/web")).unwrap();
    let sum = run(&prod, &dr, &SyncOptions::default()).await.unwrap();
    assert_eq!((sum.copied, sum.server_side), (61, 0), "{sum:?}");

    let verify = SyncOptions { verify: true, ..SyncOptions::default() };
    let sum = run(&dr, &local(back.path()), &verify).await.unwrap();
    assert_eq!((sum.copied, sum.verified), (61, 61));
    // Content and mtime made the round trip through two containers.
    assert_eq!(tree(s.path()), tree(back.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_to_blob_server_side_with_the_preload() {
    let az = Azurite::start(true);
    az.container("prod").await;
    az.container("drc").await;
    let (s, back) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(s.path(), 40, 9);
    let prod = Endpoint::parse(&az.url("prod")).unwrap();
    run(&local(s.path()), &prod, &SyncOptions::default()).await.unwrap();
    let dr = Endpoint::parse(&az.url("drc/copy")).unwrap();
    let sum = run(&prod, &dr, &SyncOptions::default()).await.unwrap();
    assert_eq!((sum.copied, sum.server_side), (40, 40), "{sum:?}");
    run(&dr, &local(back.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!(tree(s.path()), tree(back.path()), "server-side copies keep content and mtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_and_hash_compare_on_blob() {
    let az = Azurite::start(false);
    az.container("mqc").await;
    let s = tempfile::tempdir().unwrap();
    write_tree(s.path(), &[("a/1.txt", b"one"), ("b.txt", b"two"), ("c.txt", b"three")]);
    let dst = Endpoint::parse(&az.url("mqc/mq")).unwrap();
    run(&local(s.path()), &dst, &SyncOptions::default()).await.unwrap();
    // Extra blobs appear at the destination (another writer).
    let extra = tempfile::tempdir().unwrap();
    write_tree(extra.path(), &[("old/x.txt", b"x"), ("stale.txt", b"s")]);
    run(&local(extra.path()), &dst, &SyncOptions::default()).await.unwrap();

    let dry =
        report(&local(s.path()), &dst, &SyncOptions { max_delete: MaxDelete::Count(2), ..mirror() }, SyncMode::DryRun)
            .await;
    let planned: Vec<&str> = dry.planned_deletions.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(planned, vec!["old/x.txt", "stale.txt"]);
    let err =
        run(&local(s.path()), &dst, &SyncOptions { max_delete: MaxDelete::Count(1), ..mirror() }).await.unwrap_err();
    assert!(err.to_string().contains("exceed max_delete 1"), "{err}");
    let sum = run(&local(s.path()), &dst, &SyncOptions { max_delete: MaxDelete::Count(2), ..mirror() }).await.unwrap();
    assert_eq!(sum.deleted, 2);
    let back = tempfile::tempdir().unwrap();
    run(&dst, &local(back.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!(contents(s.path()), contents(back.path()));

    // Hash compare: same size, older source, different content → copied only with compare=hash.
    std::fs::write(s.path().join("b.txt"), b"TWO").unwrap();
    set_mtime(&s.path().join("b.txt"), 86_400 * 365);
    assert_eq!(run(&local(s.path()), &dst, &SyncOptions::default()).await.unwrap().copied, 0);
    let hash = SyncOptions { compare: Compare::Hash, ..SyncOptions::default() };
    assert_eq!(run(&local(s.path()), &dst, &hash).await.unwrap().copied, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_destination_container_is_one_clear_error_not_a_failure_per_file() {
    let az = Azurite::start(false);
    let s = tempfile::tempdir().unwrap();
    generate(s.path(), 30, 1);
    let dst = Endpoint::parse(&az.url("nosuch/app")).unwrap();
    let err = run(&local(s.path()), &dst, &SyncOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("the container nosuch does not exist"), "{err}");
    assert!(!err.contains("f1.dat"), "one error for the container, not one per file: {err}");
    assert!(az.blobs("nosuch").await.is_empty());
}
