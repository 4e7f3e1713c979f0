//! Local folder ↔ local folder: copy rules, mtime preservation, dry run, the mirror guards,
//! include/exclude, interruption and rerun, bad input.

use drscript_test_support::sync_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use drscript_sync::{Compare, MaxDelete, Observer, SyncEvent, SyncMode, SyncOptions};
use sync_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_copies_everything_and_preserves_mtimes() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(s.path(), 300, 1);
    std::fs::create_dir_all(s.path().join("empty/inner")).unwrap();
    set_mtime(&s.path().join("d0/e0/f0.dat"), 86_400 * 30);
    let dst = d.path().join("new/dest");
    let sum = run(&local(s.path()), &local(&dst), &SyncOptions::default()).await.unwrap();
    assert_eq!(sum.copied, 300);
    assert_eq!(sum.failures.len(), 0);
    // Same content and the same mtime (to the millisecond): the next comparison still means something.
    assert_eq!(tree(s.path()), tree(&dst));
    assert!(dirs(&dst).contains(&"empty/inner".to_string()));

    let again = run(&local(s.path()), &local(&dst), &SyncOptions::default()).await.unwrap();
    assert_eq!((again.copied, again.skipped), (0, 300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_when_missing_size_differs_or_source_newer_only() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(
        s.path(),
        &[
            ("same.txt", b"abc"),
            ("size.txt", b"longer"),
            ("newer.txt", b"new"),
            ("older.txt", b"src"),
            ("missing.txt", b"m"),
        ],
    );
    write_tree(d.path(), &[("same.txt", b"abc"), ("size.txt", b"short"), ("newer.txt", b"old"), ("older.txt", b"dst")]);
    for f in ["same.txt", "size.txt", "newer.txt", "older.txt", "missing.txt"] {
        set_mtime(&s.path().join(f), 1000);
        if d.path().join(f).exists() {
            set_mtime(&d.path().join(f), 1000);
        }
    }
    set_mtime(&s.path().join("newer.txt"), 10);
    set_mtime(&d.path().join("older.txt"), 10);
    let planned = report(&local(s.path()), &local(d.path()), &SyncOptions::default(), SyncMode::DryRun).await;
    let mut got: Vec<(String, String)> =
        planned.planned_copies.iter().map(|i| (i.path.clone(), i.reason.clone())).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("missing.txt".into(), "missing".into()),
            ("newer.txt".into(), "newer".into()),
            ("size.txt".into(), "size".into())
        ]
    );
    // The dry run changed nothing.
    assert_eq!(std::fs::read(d.path().join("size.txt")).unwrap(), b"short");
    assert!(!d.path().join("missing.txt").exists());

    let sum = run(&local(s.path()), &local(d.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!((sum.copied, sum.skipped), (3, 2));
    assert_eq!(std::fs::read(d.path().join("older.txt")).unwrap(), b"dst", "a newer destination is kept");

    // compare: hash catches a same-size, same-age difference that size+time cannot.
    std::fs::write(d.path().join("same.txt"), b"xyz").unwrap();
    set_mtime(&d.path().join("same.txt"), 1000);
    let by_time = run(&local(s.path()), &local(d.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!(by_time.copied, 0);
    let by_hash = SyncOptions { compare: Compare::Hash, ..SyncOptions::default() };
    let sum = run(&local(s.path()), &local(d.path()), &by_hash).await.unwrap();
    assert!(sum.copied >= 1);
    assert_eq!(std::fs::read(d.path().join("same.txt")).unwrap(), b"abc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_lists_copies_and_deletions_with_totals_and_changes_nothing() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(s.path(), &[("a/1.txt", b"12345"), ("b.txt", b"123")]);
    write_tree(
        d.path(),
        &[("old/x.txt", b"1234567"), ("keep.txt", b"k"), ("b.txt", b"123"), ("c.txt", b"c"), ("d.txt", b"d")],
    );
    let before = tree(d.path());
    let sum = report(
        &local(s.path()),
        &local(d.path()),
        &SyncOptions { max_delete: MaxDelete::Count(10), ..mirror() },
        SyncMode::DryRun,
    )
    .await;
    assert_eq!(tree(d.path()), before);
    // b.txt is the same size and not newer at the source: skipped.
    assert_eq!((sum.copied, sum.skipped), (1, 1), "{sum:?}");
    assert_eq!(sum.copied_bytes, 5);
    assert_eq!(sum.deleted, 4);
    assert_eq!(sum.deleted_bytes, 7 + 1 + 1 + 1);
    let deletions: Vec<&str> = sum.planned_deletions.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(deletions, vec!["c.txt", "d.txt", "keep.txt", "old/x.txt", "old/"]);
    let json = serde_json::to_string(&sum).unwrap();
    assert!(json.contains("\"planned_deletions\""), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_deletes_extra_files_and_folders_within_max_delete() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(s.path(), 50, 2);
    generate(d.path(), 50, 2);
    write_tree(d.path(), &[("extra/deep/1.txt", b"1"), ("d0/extra.txt", b"2")]);
    let sum = run(&local(s.path()), &local(d.path()), &mirror()).await.unwrap();
    assert_eq!((sum.deleted, sum.deleted_dirs), (2, 2));
    assert_eq!(contents(s.path()), contents(d.path()));
    assert!(!d.path().join("extra").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_refuses_beyond_max_delete_and_deletes_nothing() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(s.path(), &[("a.txt", b"a")]);
    write_tree(d.path(), &[("a.txt", b"a"), ("x1", b"1"), ("x2", b"2"), ("x3", b"3")]);
    // 3 of 4 destination files is 75 % > the default 50 %.
    let err = run(&local(s.path()), &local(d.path()), &mirror()).await.unwrap_err().to_string();
    assert!(err.contains("3 deletion(s) exceed max_delete 50%"), "{err}");
    assert!(d.path().join("x1").exists());
    // A count works too, and a high enough limit lets it through.
    let count = SyncOptions { max_delete: MaxDelete::Count(2), ..mirror() };
    let err = run(&local(s.path()), &local(d.path()), &count).await.unwrap_err().to_string();
    assert!(err.contains("exceed max_delete 2"), "{err}");
    assert_eq!(contents(d.path()).len(), 4);
    let ok = SyncOptions { max_delete: MaxDelete::parse("100%").unwrap(), ..mirror() };
    assert_eq!(run(&local(s.path()), &local(d.path()), &ok).await.unwrap().deleted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_refuses_an_empty_source() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(d.path(), &[("x", b"1")]);
    let all = SyncOptions { max_delete: MaxDelete::parse("100%").unwrap(), ..mirror() };
    let err = run(&local(s.path()), &local(d.path()), &all).await.unwrap_err().to_string();
    assert!(err.contains("the source has no files"), "{err}");
    assert!(d.path().join("x").exists());
    // Everything excluded counts as empty too.
    write_tree(s.path(), &[("a.log", b"1")]);
    let excl = SyncOptions { exclude: vec!["*.log".into()], ..all.clone() };
    let err = run(&local(s.path()), &local(d.path()), &excl).await.unwrap_err().to_string();
    assert!(err.contains("the source has no files"), "{err}");
    assert!(d.path().join("x").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_refuses_a_missing_source() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(d.path(), &[("x", b"1")]);
    let err = run(&local(&s.path().join("nope")), &local(d.path()), &mirror()).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(err.exit_code(), 2);
    assert!(d.path().join("x").exists());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_deletes_nothing_when_a_listing_or_copy_failed() {
    use std::os::unix::fs::PermissionsExt;
    if drscript_base::sys::is_root() {
        // root reads everything: make the failure with a folder that vanishes instead (a file
        // where the destination needs a folder).
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_tree(s.path(), &[("a.txt", b"a"), ("clash/x.txt", b"x"), ("b.txt", b"b")]);
        write_tree(d.path(), &[("clash", b"file, not folder"), ("extra.txt", b"e"), ("a.txt", b"a"), ("b.txt", b"b")]);
        let err = run(&local(s.path()), &local(d.path()), &mirror()).await.unwrap_err().to_string();
        assert!(err.contains("a file on one side and a folder on the other"), "{err}");
        assert!(err.contains("mirror deleted nothing"), "{err}");
        assert!(d.path().join("extra.txt").exists());
        return;
    }
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(s.path(), &[("ok.txt", b"a"), ("locked/x.txt", b"x")]);
    write_tree(d.path(), &[("extra.txt", b"e")]);
    std::fs::set_permissions(s.path().join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let err = run(&local(s.path()), &local(d.path()), &mirror()).await.unwrap_err().to_string();
    std::fs::set_permissions(s.path().join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(err.contains("mirror deleted nothing"), "{err}");
    assert!(d.path().join("extra.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_and_exclude_filter_copies_and_protect_from_deletion() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(s.path(), &[("a.xml", b"1"), ("web/b.xml", b"2"), ("web/c.txt", b"3"), ("tmp/d.xml", b"4")]);
    write_tree(d.path(), &[("old.xml", b"o"), ("notes.txt", b"n"), ("tmp/keep.xml", b"k")]);
    let opts = SyncOptions {
        include: vec!["*.xml".into()],
        exclude: vec!["tmp/**".into()],
        max_delete: MaxDelete::Count(5),
        ..mirror()
    };
    let sum = run(&local(s.path()), &local(d.path()), &opts).await.unwrap();
    assert_eq!(sum.copied, 2);
    assert_eq!(sum.deleted, 1);
    let got: Vec<String> = contents(d.path()).into_keys().collect();
    // old.xml deleted (included, absent from source); notes.txt and tmp/ left alone (not included / excluded).
    assert_eq!(got, vec!["a.xml", "notes.txt", "tmp/keep.xml", "web/b.xml"]);
}

/// Stops the run (by dropping its future) after `after` files were copied.
struct StopAfter {
    done: AtomicU64,
    after: u64,
    stop: tokio::sync::Notify,
}

impl Observer for StopAfter {
    fn on(&self, event: &SyncEvent) {
        if let SyncEvent::Copy { done: true, .. } = event
            && self.done.fetch_add(1, Ordering::SeqCst) + 1 == self.after
        {
            self.stop.notify_one();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_started_again_finishes_the_job() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(s.path(), 400, 3);
    // A big file so that the kill can land in the middle of a write.
    let big: Vec<u8> = (0..6_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(s.path().join("big.bin"), &big).unwrap();
    let opts = SyncOptions { concurrency: 4, ..SyncOptions::default() };
    let obs = Arc::new(StopAfter { done: AtomicU64::new(0), after: 100, stop: tokio::sync::Notify::new() });
    let (src, dst) = (local(s.path()), local(d.path()));
    let run_fut = drscript_sync::sync(&src, &dst, &opts, SyncMode::Live, obs.clone());
    tokio::select! {
        r = run_fut => panic!("the run should have been stopped, finished with {r:?}"),
        () = obs.stop.notified() => {}
    }
    let partial = contents(d.path()).len();
    assert!((100..401).contains(&partial), "{partial}");
    // What a kill -9 leaves behind: a temporary file of an unfinished write.
    std::fs::create_dir_all(d.path().join("d1")).unwrap();
    std::fs::write(d.path().join("d1/.drsync-tmp-00000000deadbeef.f1.dat"), b"partial").unwrap();

    let sum = run(&src, &dst, &SyncOptions::default()).await.unwrap();
    assert!(sum.copied > 0 && sum.copied <= 401 - 100, "{sum:?}");
    assert_eq!(contents(s.path()), contents(d.path()));
    assert!(!d.path().join("d1/.drsync-tmp-00000000deadbeef.f1.dat").exists());
}

/// A file the destination lacks is written under its own name, its mtime set last: what a kill
/// can leave of it is a shorter file with a later mtime, which the next run copies again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_cut_short_by_a_kill_is_copied_again_with_its_mode_and_mtime() {
    use std::os::unix::fs::PermissionsExt;
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    write_tree(s.path(), &[("data.bin", &data), ("run.sh", b"#!/bin/sh\n")]);
    std::fs::set_permissions(s.path().join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    set_mtime(&s.path().join("data.bin"), 3600);
    set_mtime(&s.path().join("run.sh"), 7200);
    // What a killed copy of data.bin leaves: its first bytes, written just now.
    write_tree(d.path(), &[("data.bin", &data[..40_000])]);

    let sum = run(&local(s.path()), &local(d.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!((sum.copied, sum.skipped), (2, 0), "{sum:?}");
    assert_eq!(tree(s.path()), tree(d.path()));
    let mode = std::fs::metadata(d.path().join("run.sh")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o750);
    let names: Vec<String> =
        std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with(".drsync-tmp-")), "{names:?}");
    let again = run(&local(s.path()), &local(d.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!((again.copied, again.skipped), (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_anything_runs() {
    let (s, _d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(s.path(), &[("a", b"1")]);
    let err = run(&local(s.path()), &local(&s.path().join("inner")), &SyncOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("the destination is inside the source"), "{err}");
    assert_eq!(err.exit_code(), 2);
    assert!(!s.path().join("inner").exists());

    let err = drscript_sync::Endpoint::parse("https://example.org/share?sig=TOPSECRETSIG").unwrap_err().to_string();
    assert!(err.contains("neither a local path nor a known storage URL") && !err.contains("TOPSECRETSIG"), "{err}");

    let expired = drscript_sync::Endpoint::parse(
        "https://acct.file.core.windows.net/share/web?sv=2021-06-08&sp=rwdl&se=2024-03-06T01:18:24Z&sig=TOPSECRETSIG",
    )
    .unwrap();
    let err = run(&expired, &local(s.path()), &SyncOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("expired at 2024-03-06T01:18:24Z") && !err.contains("TOPSECRETSIG"), "{err}");

    let read_only = drscript_sync::Endpoint::parse(
        "https://acct.file.core.windows.net/share/web?sv=2021-06-08&sp=rl&se=2999-01-01T00:00:00Z&sig=TOPSECRETSIG",
    )
    .unwrap();
    let err = run(&local(s.path()), &read_only, &mirror()).await.unwrap_err().to_string();
    assert!(err.contains("lacks permission write (w), create (c), delete (d)"), "{err}");
}
