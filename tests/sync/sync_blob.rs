//! Azure Blob through the SDK against Azurite: local ↔ blob, blob ↔ blob streamed (plain
//! Azurite answers Put Blob From URL with NotImplemented) and server-side (with the preload that
//! routes Put Blob From URL to Azurite's Copy Blob From URL), mirror on blob, hash compare.
//! Needs tests/support/requirements-sync.sh (node, azurite in <repo>/.tools/npm).

use drscript_test_support::sync_common;

use drscript_sync::{Compare, Endpoint, MaxDelete, SyncMode, SyncOptions};
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

/// Every deletion event, in the order the observer saw them: planned (`false`) or done (`true`).
#[derive(Default)]
struct Deletions(std::sync::Mutex<Vec<(String, bool)>>);

impl drscript_sync::Observer for Deletions {
    fn on(&self, event: &drscript_sync::SyncEvent) {
        if let drscript_sync::SyncEvent::Delete { path, done, .. } = event {
            self.0.lock().unwrap().push((path.clone(), *done));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_to_blob_in_pages_of_seven_gives_what_one_page_gives_and_counts_deletions_first() {
    let az = Azurite::start(false);
    az.container("pgs").await;
    let s = tempfile::tempdir().unwrap();
    generate(s.path(), 90, 4);
    let prod = Endpoint::parse(&az.url("pgs/src")).unwrap();
    run(&local(s.path()), &prod, &SyncOptions::default()).await.unwrap();
    let paged = |o: SyncOptions| SyncOptions { list_page_size: 7, ..o };

    // Full copy, then a no-change re-sync, both paged: 90 names in 13 pages a side.
    let dst = Endpoint::parse(&az.url("pgs/dst")).unwrap();
    let sum = run(&prod, &dst, &paged(SyncOptions::default())).await.unwrap();
    assert_eq!((sum.copied, sum.source_files), (90, 90), "{sum:?}");
    let again = run(&prod, &dst, &paged(mirror())).await.unwrap();
    assert_eq!((again.copied, again.skipped, again.deleted, again.destination_files), (0, 90, 0, 90), "{again:?}");

    // Changes on both sides: 3 blobs rewritten at the source, 5 strays at the destination.
    let more = tempfile::tempdir().unwrap();
    write_tree(more.path(), &[("d1/e1/f1.dat", b"changed"), ("d2/e2/f2.dat", b"changed too"), ("zz.txt", b"new")]);
    run(&local(more.path()), &prod, &SyncOptions::default()).await.unwrap();
    let stray = tempfile::tempdir().unwrap();
    write_tree(
        stray.path(),
        &[("0.txt", b"0"), ("d1/e1/stray", b"s"), ("d3-x", b"x"), ("d3.x", b"x"), ("~last", b"l")],
    );
    run(&local(stray.path()), &dst, &SyncOptions::default()).await.unwrap();

    // The plan is the same in pages of 7 as in one page of 5,000.
    let whole = report(&prod, &dst, &mirror(), SyncMode::DryRun).await;
    let small = report(&prod, &dst, &paged(mirror()), SyncMode::DryRun).await;
    let plan = |s: &drscript_sync::SyncSummary| {
        let c: Vec<_> = s.planned_copies.iter().map(|i| (i.path.clone(), i.reason.clone())).collect();
        let d: Vec<_> = s.planned_deletions.iter().map(|i| i.path.clone()).collect();
        (c, d, s.source_files, s.destination_files, s.skipped)
    };
    assert_eq!(plan(&whole), plan(&small));
    let (copies, deletions, ..) = plan(&small);
    assert_eq!(copies.len(), 3, "{copies:?}");
    assert_eq!(deletions, vec!["0.txt", "d1/e1/stray", "d3-x", "d3.x", "~last"]);

    // The guard refuses 5 deletions over a cap of 4 and deletes none, however many pages came
    // (the 3 copies are made: only deletions wait for the guard).
    let capped = SyncOptions { max_delete: MaxDelete::Count(4), ..paged(mirror()) };
    let err = run(&prod, &dst, &capped).await.unwrap_err().to_string();
    assert!(err.contains("5 deletion(s) exceed max_delete 4"), "{err}");
    assert_eq!(az.blobs("pgs").await.iter().filter(|b| b.starts_with("dst/")).count(), 90 + 1 + 5);

    // Allowed: every deletion was announced (counted) before the first one ran.
    let seen = std::sync::Arc::new(Deletions::default());
    let allowed = SyncOptions { max_delete: MaxDelete::Count(5), ..paged(mirror()) };
    let sum = drscript_sync::sync(&prod, &dst, &allowed, SyncMode::Live, seen.clone()).await.unwrap();
    assert_eq!((sum.copied, sum.deleted), (0, 5), "{sum:?}");
    let events = seen.0.lock().unwrap().clone();
    let first_done = events.iter().position(|(_, done)| *done).unwrap();
    assert_eq!(first_done, 5, "five planned before any done: {events:?}");
    assert_eq!(events.len(), 10);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(&prod, &local(a.path()), &SyncOptions::default()).await.unwrap();
    run(&dst, &local(b.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!(contents(a.path()), contents(b.path()));
}

/// Names whose flat order differs from a per-directory walk (`a-b` < `a.b` < `a/b`), with
/// upper case, accents, a character above U+FFFF (UTF-16 surrogates sort before U+FF5E, UTF-8
/// after it) and a name that is a prefix of a folder's.
const MIXED: &[(&str, &[u8])] = &[
    ("a-b", b"dash"),
    ("a.b", b"dot"),
    ("a/b", b"slash"),
    ("a/b-c/d", b"deep"),
    ("a0", b"zero"),
    ("B", b"upper"),
    ("\u{e9}t\u{e9}/x", b"accent"),
    ("\u{1f600}", b"astral"),
    ("\u{ff5e}", b"fullwidth tilde"),
    ("z/\u{1f600}/\u{ff5e}", b"both"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_mixed_orders_sync_local_to_blob_and_blob_to_blob() {
    let az = Azurite::start(false);
    az.container("mix").await;
    let s = tempfile::tempdir().unwrap();
    write_tree(s.path(), MIXED);
    let prod = Endpoint::parse(&az.url("mix/p")).unwrap();
    let sum = run(&local(s.path()), &prod, &mirror()).await.unwrap();
    assert_eq!((sum.copied, sum.failures.len()), (MIXED.len() as u64, 0), "{sum:?}");
    let again =
        run(&local(s.path()), &prod, &SyncOptions { max_delete: MaxDelete::Count(0), ..mirror() }).await.unwrap();
    assert_eq!((again.copied, again.skipped, again.deleted), (0, MIXED.len() as u64, 0), "{again:?}");

    for page in [2, 5000] {
        let dst = Endpoint::parse(&az.url(&format!("mix/d{page}"))).unwrap();
        let opts = SyncOptions { list_page_size: page, max_delete: MaxDelete::Count(0), ..mirror() };
        let sum = run(&prod, &dst, &opts).await.unwrap();
        assert_eq!((sum.copied, sum.deleted), (MIXED.len() as u64, 0), "page {page}: {sum:?}");
        // A wrong merge order shows here as a copy plus a deletion of the same name.
        let again = run(&prod, &dst, &opts).await.unwrap();
        assert_eq!((again.copied, again.skipped, again.deleted), (0, MIXED.len() as u64, 0), "page {page}: {again:?}");
        let back = tempfile::tempdir().unwrap();
        run(&dst, &local(back.path()), &SyncOptions::default()).await.unwrap();
        assert_eq!(contents(back.path()), contents(s.path()), "page {page}");
    }

    // One name gone at the source, one changed: exactly those two, paged or not.
    std::fs::remove_file(s.path().join("a/b")).unwrap();
    std::fs::write(s.path().join("a-b"), b"dash, longer").unwrap();
    run(&local(s.path()), &prod, &SyncOptions { max_delete: MaxDelete::Count(1), ..mirror() }).await.unwrap();
    let dst = Endpoint::parse(&az.url("mix/d2")).unwrap();
    let opts = SyncOptions { list_page_size: 2, max_delete: MaxDelete::Count(1), ..mirror() };
    let sum = run(&prod, &dst, &opts).await.unwrap();
    assert_eq!((sum.copied, sum.deleted), (1, 1), "{sum:?}");
    let back = tempfile::tempdir().unwrap();
    run(&dst, &local(back.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!(contents(back.path()), contents(s.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_to_blob_filters_prune_folders_in_a_flat_listing_as_in_a_walk() {
    let az = Azurite::start(false);
    az.container("flt").await;
    let s = tempfile::tempdir().unwrap();
    write_tree(s.path(), &[("keep/a.xml", b"1"), ("tmp/b.xml", b"2"), ("keep/tmp/c.xml", b"3"), ("d.txt", b"4")]);
    let prod = Endpoint::parse(&az.url("flt/p")).unwrap();
    run(&local(s.path()), &prod, &SyncOptions::default()).await.unwrap();
    let stray = tempfile::tempdir().unwrap();
    write_tree(stray.path(), &[("tmp/old.xml", b"o"), ("old.xml", b"o")]);
    let dst = Endpoint::parse(&az.url("flt/d")).unwrap();
    run(&local(stray.path()), &dst, &SyncOptions::default()).await.unwrap();
    let opts = SyncOptions {
        include: vec!["*.xml".into()],
        exclude: vec!["tmp/**".into()],
        max_delete: MaxDelete::Count(5),
        list_page_size: 1,
        ..mirror()
    };
    let sum = run(&prod, &dst, &opts).await.unwrap();
    assert_eq!((sum.copied, sum.deleted), (2, 1), "{sum:?}");
    let mut got = az.blobs("flt").await;
    got.retain(|b| b.starts_with("d/"));
    assert_eq!(got, vec!["d/keep/a.xml", "d/keep/tmp/c.xml", "d/tmp/old.xml"]);
}
