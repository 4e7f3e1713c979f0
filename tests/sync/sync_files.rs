//! Azure Files on the emulator: local → Files, Files → Files (server-side and streamed),
//! Files → local, mirror, paging, Shared Key, SAS errors from the service, no secret in outputs.

use drscript_test_support::sync_common;

use std::path::Path;

use md5::Digest;

use drscript_sandbox::azure_files::{self, FilesEmulator};
use drscript_sync::azure_files::FilesClient;
use drscript_sync::azure_files::auth::account_sas;
use drscript_sync::{Endpoint, StorageCredential, SyncMode, SyncOptions};
use sync_common::*;

const ACCOUNT: &str = "prodacct";
// A real-looking base64 key; registered as a secret like a config key would be.
const KEY: &str = "c2VjcmV0LWtleS1vZi10aGUtZW11bGF0b3ItYWNjb3VudC0wMTIzNDU2Nzg5YWJjZGVm";

async fn emulator(dir: &Path) -> FilesEmulator {
    drscript_base::redact::register(KEY);
    let emu = azure_files::start(dir, &[(ACCOUNT, KEY)]).await.unwrap();
    for share in ["prod", "drshare"] {
        std::fs::create_dir_all(dir.join(ACCOUNT).join(share)).unwrap();
    }
    emu
}

fn sas(perms: &str) -> String {
    account_sas(ACCOUNT, KEY, perms, chrono::Utc::now() + chrono::Duration::hours(2))
}

fn files_url(emu: &FilesEmulator, share_path: &str, sas: &str) -> Endpoint {
    Endpoint::parse(&format!("files+http://{}/{ACCOUNT}/{share_path}?{sas}", emu.addr)).unwrap()
}

fn shared_key(emu: &FilesEmulator, share_path: &str) -> Endpoint {
    let mut ep = Endpoint::parse(&format!("files+http://{}/{ACCOUNT}/{share_path}", emu.addr)).unwrap();
    if let Endpoint::Files(r) = &mut ep {
        r.credential = StorageCredential::SharedKey(KEY.to_string());
    }
    ep
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_to_files_to_files_to_local_round_trip() {
    let (store, s, back) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    generate(s.path(), 120, 7);
    // One file larger than a 4 MiB range.
    let big: Vec<u8> = (0..9_000_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(s.path().join("d1/big.bin"), &big).unwrap();
    std::fs::write(s.path().join("empty.txt"), b"").unwrap();
    std::fs::create_dir_all(s.path().join("emptydir")).unwrap();
    set_mtime(&s.path().join("d1/big.bin"), 3600 * 24 * 400);

    let rw = sas("rwdlacup");
    let prod = files_url(&emu, "prod/web/repository", &rw);
    let sum = run(&local(s.path()), &prod, &SyncOptions::default()).await.unwrap();
    assert_eq!(sum.copied, 122, "{sum:?}");
    // The emulator keeps shares as folders: content and last-write-time landed as they should.
    let on_share = store.path().join(ACCOUNT).join("prod/web/repository");
    assert_eq!(tree(s.path()), tree(&on_share));
    assert!(dirs(&on_share).contains(&"emptydir".to_string()));

    let again = run(&local(s.path()), &prod, &SyncOptions::default()).await.unwrap();
    assert_eq!((again.copied, again.skipped), (0, 122));

    // Files → Files with a SAS on the source: server-side, range by range.
    let dr = files_url(&emu, "drshare/web/repository", &rw);
    let sum = run(&prod, &dr, &SyncOptions::default()).await.unwrap();
    assert_eq!((sum.copied, sum.server_side), (122, 122), "{sum:?}");
    assert_eq!(tree(s.path()), tree(&store.path().join(ACCOUNT).join("drshare/web/repository")));

    // Streamed through the client when asked (or when the source has no SAS: Shared Key).
    let streamed = SyncOptions { server_side: false, ..SyncOptions::default() };
    let dr2 = shared_key(&emu, "drshare/copy2");
    let sum = run(&shared_key(&emu, "prod/web/repository"), &dr2, &streamed).await.unwrap();
    assert_eq!((sum.copied, sum.server_side), (122, 0));
    assert_eq!(tree(s.path()), tree(&store.path().join(ACCOUNT).join("drshare/copy2")));

    // Files → local, verified by MD5.
    let verify = SyncOptions { verify: true, ..SyncOptions::default() };
    let sum = run(&dr, &local(back.path()), &verify).await.unwrap();
    assert_eq!((sum.copied, sum.verified), (122, 122));
    assert_eq!(tree(s.path()), tree(back.path()));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_on_files_deletes_extras_and_guards_hold() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    write_tree(s.path(), &[("a/1.txt", b"1"), ("b.txt", b"2"), ("c.txt", b"3")]);
    let dst_dir = store.path().join(ACCOUNT).join("drshare/rabbitmq");
    write_tree(&dst_dir, &[("a/1.txt", b"1"), ("old/deep/x.txt", b"x"), ("stale.txt", b"s")]);
    let dst = files_url(&emu, "drshare/rabbitmq", &sas("rwdlc"));
    // 2 extras of 3 destination files: over the default 50 %.
    let err = run(&local(s.path()), &dst, &mirror()).await.unwrap_err().to_string();
    assert!(err.contains("exceed max_delete 50%"), "{err}");
    assert!(dst_dir.join("stale.txt").exists());
    let all = SyncOptions { max_delete: drscript_sync::MaxDelete::parse("100%").unwrap(), ..mirror() };
    let sum = run(&local(s.path()), &dst, &all).await.unwrap();
    assert_eq!((sum.deleted, sum.deleted_dirs), (2, 2), "{sum:?}");
    assert_eq!(contents(s.path()), contents(&dst_dir));
    assert!(!dst_dir.join("old").exists());
    // An empty source never empties the destination.
    let empty = tempfile::tempdir().unwrap();
    let err = run(&local(empty.path()), &dst, &all).await.unwrap_err().to_string();
    assert!(err.contains("the source has no files"), "{err}");
    assert_eq!(contents(s.path()), contents(&dst_dir));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_follows_paging_markers() {
    let store = tempfile::tempdir().unwrap();
    let emu = emulator(store.path()).await;
    let dir = store.path().join(ACCOUNT).join("prod/many");
    for i in 0..23 {
        write_tree(&dir, &[(&format!("f{i:02}"), b"x")]);
    }
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let Endpoint::Files(remote) = files_url(&emu, "prod/many", &sas("rl")) else { panic!() };
    let client = FilesClient::new(remote.clone()).with_page_size(5);
    let entries = client.list("").await.unwrap().unwrap();
    assert_eq!(entries.len(), 24);
    // And the raw XML carries the documented marker elements.
    let url = format!("http://{}/{ACCOUNT}/prod/many?restype=directory&comp=list&maxresults=5&{}", emu.addr, sas("rl"));
    let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(body.contains("<MaxResults>5</MaxResults>") && body.contains("<NextMarker>f05</NextMarker>"), "{body}");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_errors_name_the_url_and_status_and_never_the_secret() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    write_tree(s.path(), &[("a.txt", b"1")]);
    // A SAS signed with another key: the service answers 403 AuthenticationFailed.
    let forged = account_sas(
        ACCOUNT,
        "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXk=",
        "rwdlc",
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    let sig = url::form_urlencoded::parse(forged.as_bytes()).find(|(k, _)| k == "sig").unwrap().1.into_owned();
    let dst = files_url(&emu, "drshare/x", &forged);
    let err = run(&local(s.path()), &dst, &SyncOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("403") && err.contains("AuthenticationFailed"), "{err}");
    assert!(err.contains(&format!("http://{}/{ACCOUNT}/drshare/x", emu.addr)), "{err}");
    assert!(!err.contains(&sig), "{err}");

    // A missing share.
    let ok = sas("rwdlc");
    let err = run(&files_url(&emu, "nosuchshare/x", &ok), &local(s.path()), &SyncOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("does not exist") || err.to_string().contains("ShareNotFound"), "{err}");

    // Shared Key with a wrong key.
    let mut ep = shared_key(&emu, "drshare/y");
    if let Endpoint::Files(r) = &mut ep {
        r.credential = StorageCredential::SharedKey("d3Jvbmcta2V5LXdyb25nLWtleQ==".into());
    }
    let err = run(&local(s.path()), &ep, &SyncOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("403") && err.contains("AuthenticationFailed"), "{err}");

    // Every output of a successful dry run and live run is free of SAS signatures and the key.
    let good_sig = url::form_urlencoded::parse(ok.as_bytes()).find(|(k, _)| k == "sig").unwrap().1.into_owned();
    let dst = files_url(&emu, "drshare/z", &ok);
    let dry = report(&local(s.path()), &dst, &SyncOptions::default(), SyncMode::DryRun).await;
    let live = run(&local(s.path()), &dst, &SyncOptions::default()).await.unwrap();
    for text in [
        dry.render(),
        live.render(),
        serde_json::to_string(&dry).unwrap(),
        serde_json::to_string(&live).unwrap(),
        format!("{dst:?}"),
    ] {
        assert!(!text.contains(&good_sig) && !text.contains(KEY), "{text}");
    }
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_carry_their_md5_so_a_hash_compare_reads_no_content_but_verify_reads_it_back() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    generate(s.path(), 40, 3);
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 239) as u8).collect();
    std::fs::write(s.path().join("d2/big.bin"), &big).unwrap();
    let rw = sas("rwdlacup");
    let dst = files_url(&emu, "drshare/app", &rw);
    let verify = SyncOptions { verify: true, ..SyncOptions::default() };
    let reads = emu.content_reads();
    let sum = run(&local(s.path()), &dst, &verify).await.unwrap();
    assert_eq!((sum.copied, sum.verified), (41, 41), "{sum:?}");
    // The emulator stores what the client claims without checking it: verify must read back.
    assert_eq!(emu.content_reads() - reads, 41, "verify did not read every uploaded file back");

    // Get File Properties gives each file the MD5 of its source.
    let Endpoint::Files(remote) = &dst else { unreachable!() };
    let client = FilesClient::new(remote.clone());
    for (rel, (_, hash)) in contents(s.path()) {
        let md5 = client.properties(&rel).await.unwrap().md5.unwrap_or_else(|| panic!("{rel} has no Content-MD5"));
        assert_eq!(hex::encode(md5), hash, "{rel}");
    }

    // A hash compare with nothing changed reads no content from the share.
    let hash = SyncOptions { compare: drscript_sync::Compare::Hash, ..SyncOptions::default() };
    let reads = emu.content_reads();
    let sum = run(&local(s.path()), &dst, &hash).await.unwrap();
    assert_eq!((sum.copied, sum.skipped), (0, 41), "{sum:?}");
    assert_eq!(emu.content_reads(), reads, "a hash compare read content although every file has its MD5");

    // Same size, different content, older source: only the hash compare copies it, and the new
    // upload replaces the stored MD5.
    std::fs::write(s.path().join("d2/big.bin"), big.iter().map(|b| b ^ 1).collect::<Vec<u8>>()).unwrap();
    set_mtime(&s.path().join("d2/big.bin"), 86_400 * 365);
    assert_eq!(run(&local(s.path()), &dst, &SyncOptions::default()).await.unwrap().copied, 0);
    assert_eq!(run(&local(s.path()), &dst, &hash).await.unwrap().copied, 1);
    let back = tempfile::tempdir().unwrap();
    run(&dst, &local(back.path()), &SyncOptions::default()).await.unwrap();
    assert_eq!(contents(s.path()), contents(back.path()));
    assert_eq!(run(&local(s.path()), &dst, &hash).await.unwrap().copied, 0, "the stored MD5 was not replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_that_goes_away_mid_sync_stops_it_early_and_the_rerun_completes_it() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    let addr = emu.addr;
    generate(s.path(), 1500, 11);
    for i in 0..4 {
        let big: Vec<u8> = (0..9_000_000u32).map(|k| ((k + i) % 233) as u8).collect();
        std::fs::write(s.path().join(format!("d{i}/big{i}.bin")), big).unwrap();
    }
    let rw = sas("rwdlacup");
    let dst = files_url(&emu, "drshare/app", &rw);
    let on_share = store.path().join(ACCOUNT).join("drshare/app");
    write_tree(&on_share, &[("stale.txt", b"only at DR")]);
    let sync = tokio::spawn({
        let (src, dst) = (local(s.path()), dst.clone());
        async move { run(&src, &dst, &mirror()).await }
    });
    while tree(&on_share).len() < 100 {
        assert!(!sync.is_finished(), "the sync finished before the share could go away");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    emu.stop().await;
    let err = sync.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("stopped early") && err.contains("not tried"), "{err}");
    assert!(err.contains(&format!("{addr}/{ACCOUNT}/drshare/app")), "the error names the share: {err}");
    assert!(err.contains("mirror deleted nothing"), "{err}");
    assert!(on_share.join("stale.txt").exists(), "a mirror that stopped early deleted");
    assert!(tree(&on_share).len() < 1505, "the share went away after the sync had finished");

    // The share is back (same folder, same address): the rerun finishes, and every file is
    // whole, including any whose upload was cut off half-way.
    let emu = azure_files::start_on(store.path(), &[(ACCOUNT, KEY)], &addr.to_string()).await.unwrap();
    let sum = run(&local(s.path()), &dst, &mirror()).await.unwrap();
    assert!(sum.skipped > 0 && sum.copied > 0 && sum.deleted == 1, "{sum:?}");
    assert_eq!(contents(s.path()), contents(&on_share));
    emu.stop().await;
}

fn files_python() -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv-files/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run tests/support/requirements-files.sh (it installs azure-storage-file-share into .tools/venv-files)",
        p.display()
    );
    p
}

/// Runs tests/support/files_sdk_client.py against the emulator; what the SDK saw, as JSON.
async fn sdk_session(emu: &FilesEmulator) -> serde_json::Value {
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/files_sdk_client.py");
    let url = emu.account_url(ACCOUNT);
    let out = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(files_python())
            .arg(script)
            .args([url.as_str(), ACCOUNT])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{KEY}").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK failed against the emulator:\n{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_sdk_signs_shared_key_and_sas_and_the_emulator_verifies_and_refuses_as_the_service() {
    let store = tempfile::tempdir().unwrap();
    let emu = emulator(store.path()).await;
    let seen = sdk_session(&emu).await;
    // Shared Key: one file whatever the case, the first case kept.
    assert_eq!(seen["case_listing"], serde_json::json!(["Case.txt"]), "{seen}");
    assert_eq!(seen["case_listing_other_case"], serde_json::json!(["Case.txt"]), "{seen}");
    assert_eq!(seen["case_download"], "second version", "{seen}");
    assert!(store.path().join(ACCOUNT).join("sdkkey/Docs/Case.txt").is_file());
    // Properties.
    assert_eq!(seen["content_type"], "text/csv", "{seen}");
    assert_eq!(seen["metadata_before"], serde_json::json!({"a": "1"}), "{seen}");
    assert_eq!(seen["metadata_after"], serde_json::json!({"b": "2"}), "{seen}");
    for flag in ["etags_differ", "creation_kept", "last_write_moved", "range_md5_checked", "copy_content_equal"] {
        assert_eq!(seen[flag], true, "{flag}: {seen}");
    }
    assert_eq!(seen["ranges"], serde_json::json!([[0, 9999]]), "{seen}");
    assert_eq!(seen["copy_status"], "success", "{seen}");
    assert_eq!(seen["lease_state"], "leased", "{seen}");
    assert_eq!(seen["lease_write_without_id"], serde_json::json!([412, "LeaseIdMissing"]), "{seen}");
    assert_eq!(seen["lease_write_other_id"], serde_json::json!([412, "LeaseIdMismatchWithFileOperation"]), "{seen}");
    assert_eq!(seen["lease_delete_without_id"], serde_json::json!([412, "LeaseIdMissing"]), "{seen}");
    assert_eq!(seen["lease_acquire_again_other_id"], serde_json::json!([409, "LeaseAlreadyPresent"]), "{seen}");
    assert_eq!(seen["lease_state_released"], "available", "{seen}");
    assert_eq!(
        seen["lease_write_without_lease"],
        serde_json::json!([412, "LeaseNotPresentWithFileOperation"]),
        "{seen}"
    );
    assert_eq!(seen["lease_state_broken"], "available", "{seen}");
    // Names.
    assert_eq!(seen["bad_name"], serde_json::json!([400, "InvalidResourceName"]), "{seen}");
    assert_eq!(seen["long_name"], serde_json::json!([400, "InvalidResourceName"]), "{seen}");
    assert_eq!(seen["dots_listing"], serde_json::json!(["kept.", "trimmed"]), "{seen}");
    assert_eq!(seen["after_delete"], serde_json::json!(["Case.txt", "kept.", "trimmed"]), "{seen}");
    assert_eq!(seen["wrong_key"], serde_json::json!([403, "AuthenticationFailed"]), "{seen}");
    assert_eq!(seen["odd_name"], "odd", "{seen}");
    assert_eq!(seen["listed_attributes"], "Archive", "{seen}");
    assert_eq!(seen["listed_has_times"], true, "{seen}");
    assert_eq!(seen["listed_etag_matches"], true, "{seen}");
    // SAS made by the SDK.
    assert_eq!(seen["sas_listing"], serde_json::json!(["one.bin"]), "{seen}");
    assert_eq!(seen["sas_md5"], format!("{:x}", md5::Md5::digest(vec![b'a'; 5_000_000])), "{seen}");
    assert_eq!(seen["sas_after_delete"], false, "{seen}");
    assert_eq!(seen["sip_here"], true, "{seen}");
    assert_eq!(seen["sip_elsewhere"], serde_json::json!([403, "AuthorizationSourceIPMismatch"]), "{seen}");
    assert_eq!(seen["spr_https"], serde_json::json!([403, "AuthorizationProtocolMismatch"]), "{seen}");
    assert_eq!(seen["read_only_write"], serde_json::json!([403, "AuthorizationPermissionMismatch"]), "{seen}");
    assert_eq!(seen["file_sas_read"], 10_000, "{seen}");
    assert_eq!(seen["file_sas_write"], serde_json::json!([403, "AuthorizationPermissionMismatch"]), "{seen}");
    assert_eq!(seen["file_sas_other_file"], serde_json::json!([403, "AuthenticationFailed"]), "{seen}");
    emu.stop().await;
}

/// Every file under `root`, relative, `/`-separated.
fn files_under(root: &Path) -> Vec<String> {
    tree(root).into_keys().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_with_names_differing_only_in_case_is_refused_before_anything_is_copied() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    generate(s.path(), 30, 5);
    write_tree(s.path(), &[("web/Case.txt", b"upper"), ("web/case.txt", b"lower"), ("Web2/x.txt", b"x")]);
    let dst_dir = store.path().join(ACCOUNT).join("drshare/app");
    write_tree(&dst_dir, &[("web/case.txt", b"at DR"), ("stale.txt", b"s")]);
    let dst = files_url(&emu, "drshare/app", &sas("rwdlc"));
    let before = contents(&dst_dir);
    for opts in [SyncOptions::default(), mirror()] {
        let err = run(&local(s.path()), &dst, &opts).await.unwrap_err().to_string();
        assert!(err.contains("web/Case.txt and web/case.txt differ only in case"), "{err}");
        assert!(err.contains("nothing was copied"), "{err}");
        assert_eq!(contents(&dst_dir), before, "a refused sync changed the share");
    }
    // Excluding one of the two lets the sync run; the other lands on the file already there.
    let opts = SyncOptions { exclude: vec!["web/case.txt".into()], ..mirror() };
    let sum = run(
        &local(s.path()),
        &dst,
        &SyncOptions { max_delete: drscript_sync::MaxDelete::parse("100%").unwrap(), ..opts },
    )
    .await
    .unwrap();
    assert_eq!(sum.deleted, 1, "{sum:?}");
    assert!(files_under(&dst_dir).contains(&"web/case.txt".to_string()), "the first-written case was not kept");
    assert_eq!(std::fs::read(dst_dir.join("web/case.txt")).unwrap(), b"upper");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_file_in_another_case_is_updated_in_place_and_never_deleted_by_a_mirror() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    write_tree(s.path(), &[("Web/Repository/Case.TXT", b"new content"), ("Web/keep.txt", b"k")]);
    let dst_dir = store.path().join(ACCOUNT).join("drshare/app");
    write_tree(&dst_dir, &[("web/repository/case.txt", b"old"), ("web/keep.txt", b"k")]);
    set_mtime(&dst_dir.join("web/repository/case.txt"), 86_400);
    let dst = files_url(&emu, "drshare/app", &sas("rwdlc"));
    let sum = run(&local(s.path()), &dst, &mirror()).await.unwrap();
    assert_eq!((sum.copied, sum.deleted, sum.deleted_dirs), (1, 0, 0), "{sum:?}");
    assert_eq!(files_under(&dst_dir), vec!["web/keep.txt".to_string(), "web/repository/case.txt".to_string()]);
    assert_eq!(std::fs::read(dst_dir.join("web/repository/case.txt")).unwrap(), b"new content");
    // And the next run finds nothing to do.
    let again = run(&local(s.path()), &dst, &mirror()).await.unwrap();
    assert_eq!((again.copied, again.skipped, again.deleted), (0, 2, 0), "{again:?}");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_azure_files_refuses_are_reported_by_name_before_copying() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    write_tree(s.path(), &[("ok.txt", b"1"), ("d/a:b.txt", b"2"), ("d/trailing.", b"3"), ("what?/x", b"4")]);
    let dst = files_url(&emu, "drshare/names", &sas("rwdlc"));
    let err = run(&local(s.path()), &dst, &SyncOptions::default()).await.unwrap_err().to_string();
    for name in ["d/a:b.txt: contains ':'", "d/trailing.: ends with a dot", "what?: contains '?'"] {
        assert!(err.contains(name), "{name} not in: {err}");
    }
    assert!(err.contains("3 source name(s)"), "{err}");
    assert!(!store.path().join(ACCOUNT).join("drshare/names").exists(), "something was created");
    // The emulator itself refuses such a name with the service's code, not a 500.
    let url = format!("http://{}/{ACCOUNT}/drshare/a%3Ab.txt?{}", emu.addr, sas("rwdlc"));
    let resp = reqwest::Client::new()
        .put(&url)
        .header("x-ms-version", "2023-11-03")
        .header("x-ms-type", "file")
        .header("x-ms-content-length", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-ms-error-code"], "InvalidResourceName");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_from_the_service_fails_the_file_at_once_without_retries() {
    use drscript_sync::azure_files::auth::{SasFields, account_sas_string, sign};
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    write_tree(s.path(), &[("a.txt", b"1"), ("b.txt", b"2")]);
    // A SAS for shares and folders but not files (srt=sc): listing works, each upload is 403.
    let f = SasFields {
        sv: "2022-11-02".into(),
        ss: Some("f".into()),
        srt: Some("sc".into()),
        sp: "rwdlc".into(),
        se: (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        spr: "https,http".into(),
        ..SasFields::default()
    };
    let sig = sign(KEY, &account_sas_string(ACCOUNT, &f)).unwrap();
    let q = format!("sv={}&ss=f&srt=sc&sp=rwdlc&se={}&spr=https%2Chttp&sig={}", f.sv, f.se, urlencoding(&sig));
    let opts = SyncOptions { retry_delay: std::time::Duration::from_secs(2), ..SyncOptions::default() };
    let started = std::time::Instant::now();
    let err = run(&local(s.path()), &files_url(&emu, "drshare/x", &q), &opts).await.unwrap_err().to_string();
    assert!(err.contains("403") && err.contains("AuthorizationResourceTypeMismatch"), "{err}");
    assert!(!err.contains("attempts"), "a 4xx was retried: {err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "a 4xx waited for a retry");
    emu.stop().await;
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// drscript's Shared Key signing checked by the emulator's own verifier, and the request
/// checks the service makes before the signature: version and date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_key_requests_need_a_version_and_a_fresh_date_as_the_service_requires() {
    use drscript_sync::azure_files::auth::{SignedRequest, shared_key_authorization};
    let store = tempfile::tempdir().unwrap();
    let emu = emulator(store.path()).await;
    let path = format!("/{ACCOUNT}/drshare");
    let query = vec![("restype".to_string(), "directory".to_string())];
    let send = |headers: Vec<(String, String)>| {
        let url = format!("http://{}{path}?restype=directory", emu.addr);
        let signed = SignedRequest { method: "GET", headers: &headers, path: &path, query: &query };
        let authz = shared_key_authorization(ACCOUNT, KEY, &signed).unwrap();
        let mut req = reqwest::Client::new().get(url).header("authorization", authz);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        req.send()
    };
    let date = |ago: i64| {
        (chrono::Utc::now() - chrono::Duration::minutes(ago)).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
    };
    let h = |pairs: &[(&str, String)]| pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>();
    let v = || "2023-11-03".to_string();

    let ok = send(h(&[("x-ms-version", v()), ("x-ms-date", date(14))])).await.unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
    assert_eq!(ok.headers()["x-ms-version"], "2023-11-03", "the answer names the version asked for");

    let old = send(h(&[("x-ms-version", v()), ("x-ms-date", date(16))])).await.unwrap();
    assert_eq!(
        (old.status().as_u16(), old.headers()["x-ms-error-code"].to_str().unwrap()),
        (403, "AuthenticationFailed")
    );
    assert!(old.text().await.unwrap().contains("Request date header too old"));

    let none = send(h(&[("x-ms-version", v())])).await.unwrap();
    assert_eq!(none.status(), 403);
    assert!(none.text().await.unwrap().contains("Request date header not specified"));
    // The standard Date header serves when x-ms-date is absent.
    let std_date = send(h(&[("x-ms-version", v()), ("date", date(0))])).await.unwrap();
    assert_eq!(std_date.status(), 200);

    let unversioned = send(h(&[("x-ms-date", date(0))])).await.unwrap();
    assert_eq!(unversioned.status(), 403);
    assert!(unversioned.text().await.unwrap().contains("Unversioned authenticated access is not allowed"));

    let unknown = send(h(&[("x-ms-version", "2099-01-01".into()), ("x-ms-date", date(0))])).await.unwrap();
    assert_eq!(
        (unknown.status().as_u16(), unknown.headers()["x-ms-error-code"].to_str().unwrap()),
        (400, "InvalidHeaderValue")
    );
    assert!(unknown.text().await.unwrap().contains("<HeaderName>x-ms-version</HeaderName>"));
    emu.stop().await;
}

/// What an operator sees: `drscript sync` into Azure Files with two names differing only in
/// case stops before copying, names both, exits non-zero, and shows no SAS signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_names_both_case_twins_and_copies_nothing() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    write_tree(s.path(), &[("conf/App.xml", b"1"), ("conf/app.xml", b"2"), ("other.txt", b"3")]);
    let rw = sas("rwdlc");
    let sig = url::form_urlencoded::parse(rw.as_bytes()).find(|(k, _)| k == "sig").unwrap().1.into_owned();
    let url = format!("files+http://{}/{ACCOUNT}/drshare/cli?{rw}", emu.addr);
    let src = s.path().to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_drscript"))
            .args(["sync", &src, &url, "--mirror"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "bad input, nothing runs: {stderr}");
    assert!(stderr.contains("conf/App.xml and conf/app.xml differ only in case"), "{stderr}");
    assert!(!stderr.contains(&sig), "{stderr}");
    assert!(!store.path().join(ACCOUNT).join("drshare/cli").exists(), "something was copied");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_to_files_between_two_accounts_on_two_servers_copies_server_side() {
    let (a, b, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let prod = emulator(a.path()).await;
    const DR: &str = "dracct";
    let dr_key = "ZHIta2V5LW9mLXRoZS1zZWNvbmQtZW11bGF0b3ItYWNjb3VudC0wMTIzNDU2Nzg5YWI=";
    drscript_base::redact::register(dr_key);
    let dr = azure_files::start(b.path(), &[(DR, dr_key)]).await.unwrap();
    std::fs::create_dir_all(b.path().join(DR).join("drshare")).unwrap();
    generate(s.path(), 40, 3);
    let big: Vec<u8> = (0..9_000_000u32).map(|i| (i % 239) as u8).collect();
    std::fs::write(s.path().join("big.bin"), &big).unwrap();
    let source = files_url(&prod, "prod/app", &sas("rwdlacup"));
    run(&local(s.path()), &source, &SyncOptions::default()).await.unwrap();

    // The destination server reads each range from the other server with the source's SAS.
    let dr_sas = account_sas(DR, dr_key, "rwdlacup", chrono::Utc::now() + chrono::Duration::hours(2));
    let target = Endpoint::parse(&format!("files+http://{}/{DR}/drshare/app?{dr_sas}", dr.addr)).unwrap();
    let sum = run(&source, &target, &SyncOptions::default()).await.unwrap();
    assert_eq!((sum.copied, sum.server_side), (41, 41), "{sum:?}");
    assert_eq!(tree(s.path()), tree(&b.path().join(DR).join("drshare/app")));

    // A source SAS the other server refuses is the service's CannotVerifyCopySource, with the
    // source's status: the sync engine then streams instead.
    let Endpoint::Files(remote) = &target else { unreachable!() };
    let client = FilesClient::new(remote.clone());
    let forged = format!("http://{}/{ACCOUNT}/prod/app/big.bin?{}", prod.addr, sas("r").replace("sig=", "sig=AAAA"));
    let e = client.copy_from_url("forged.bin", big.len() as u64, None, &forged).await.unwrap_err();
    assert_eq!((e.status, e.code.as_deref()), (Some(403), Some("CannotVerifyCopySource")), "{e:?}");
    assert!(e.message.contains("The copy source answered 403 AuthenticationFailed"), "{}", e.message);
    prod.stop().await;
    dr.stop().await;
}

/// A chain 12 folders deep beside 40 wide ones: the breadth-first pool lists it all, once.
fn deep_and_wide(root: &Path) {
    let mut deep = String::from("deep");
    for level in 0..12 {
        write_tree(root, &[(&format!("{deep}/f{level}.txt"), format!("level {level}").as_bytes())]);
        deep.push_str(&format!("/l{level}"));
    }
    for w in 0..40 {
        write_tree(root, &[(&format!("wide/w{w:02}/a.txt"), format!("w{w}").as_bytes())]);
        write_tree(root, &[(&format!("wide/w{w:02}/x/b.txt"), b"b")]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_and_wide_tree_is_listed_in_parallel_and_a_deep_extra_tree_deleted_level_by_level() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    deep_and_wide(s.path());
    let rw = sas("rwdlacup");
    let prod = files_url(&emu, "prod/tree", &rw);
    let sum = run(&local(s.path()), &prod, &SyncOptions::default()).await.unwrap();
    assert_eq!(sum.copied, 12 + 80, "{sum:?}");

    // An extra tree at the destination, 6 folders deep with files at every level.
    let dst_dir = store.path().join(ACCOUNT).join("drshare/tree");
    let mut extra = String::from("gone");
    for level in 0..6 {
        write_tree(
            &dst_dir,
            &[(&format!("{extra}/e{level}.txt"), b"e"), (&format!("{extra}/side{level}/s.txt"), b"s")],
        );
        extra.push_str(&format!("/g{level}"));
    }
    let dr = files_url(&emu, "drshare/tree", &rw);
    for listings in [1, 32] {
        let opts = SyncOptions {
            list_concurrency: listings,
            max_delete: drscript_sync::MaxDelete::parse("100%").unwrap(),
            ..mirror()
        };
        let sum = run(&prod, &dr, &opts).await.unwrap();
        if listings == 1 {
            assert_eq!((sum.copied, sum.deleted, sum.deleted_dirs), (92, 12, 12), "{sum:?}");
        } else {
            assert_eq!((sum.copied, sum.skipped, sum.deleted), (0, 92, 0), "{sum:?}");
        }
        assert_eq!(contents(s.path()), contents(&dst_dir));
        assert_eq!(dirs(s.path()), dirs(&dst_dir), "every folder, none left over");
    }
    emu.stop().await;
}

/// The Files emulator throttling every request (503 `ServerBusy`, `Retry-After: 1`) for three
/// seconds: the sync waits as the service asks and finishes once the burst is over. Its own
/// computed waits are shrunk to a few milliseconds here, so that its twenty tries alone would be
/// spent within the first second of the burst: only honouring `Retry-After` gets it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_burst_is_ridden_out_by_waiting_as_the_service_asks() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = faulty_emulator(store.path(), "files=throttle:100%,burst:1s", 1).await;
    std::fs::create_dir_all(store.path().join(ACCOUNT).join("drshare")).unwrap();
    generate(s.path(), 40, 5);
    let opts = SyncOptions {
        retry_delay: std::time::Duration::from_millis(1),
        retry_max_delay: std::time::Duration::from_millis(5),
        ..SyncOptions::default()
    };
    let addr = emu.addr;
    let burst_ends = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let url = format!("http://{addr}/_sandbox/faults");
        reqwest::Client::new().delete(url).send().await.unwrap().json::<serde_json::Value>().await.unwrap()
    });
    let sum = run(&local(s.path()), &files_url(&emu, "drshare/app", &sas("rwdlacup")), &opts).await.unwrap();
    let report = burst_ends.await.unwrap();
    assert_eq!(sum.copied, 40, "{sum:?}");
    assert_eq!(tree(s.path()), tree(&store.path().join(ACCOUNT).join("drshare/app")));
    let throttled = report["injected"]["throttle 503"].as_u64().unwrap_or(0);
    assert!(throttled > 0, "nothing was throttled: {report}");
    // One second between the tries of each request in flight (at most 16 copies and 16
    // listings), over a three-second burst: a handful of 503s each, not twenty.
    assert!(throttled <= 32 * 5, "{throttled} throttled answers: the waits were not the service's");
    emu.stop().await;
}

/// A refused credential is the same for every file: the sync stops at the first 403 instead of
/// failing each file in turn, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_stops_the_copy_at_once() {
    use drscript_sync::azure_files::auth::{SasFields, account_sas_string, sign};
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    generate(s.path(), 300, 9);
    // A SAS for shares and folders but not files (srt=sc): listing works, each upload is 403.
    let f = SasFields {
        sv: "2022-11-02".into(),
        ss: Some("f".into()),
        srt: Some("sc".into()),
        sp: "rwdlc".into(),
        se: (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        spr: "https,http".into(),
        ..SasFields::default()
    };
    let sig = sign(KEY, &account_sas_string(ACCOUNT, &f)).unwrap();
    let q = format!("sv={}&ss=f&srt=sc&sp=rwdlc&se={}&spr=https%2Chttp&sig={}", f.sv, f.se, urlencoding(&sig));
    let opts = SyncOptions { concurrency: 2, ..SyncOptions::default() };
    let (src, dst) = (local(s.path()), files_url(&emu, "drshare/x", &q));
    let sum = drscript_sync::sync_report(&src, &dst, &opts, SyncMode::Live, std::sync::Arc::new(drscript_sync::Quiet))
        .await
        .unwrap();
    let why = sum.stopped.clone().unwrap_or_default();
    assert!(why.contains("403") && why.contains("every other file would fail"), "{sum:?}");
    assert!(sum.failures.len() <= 4, "{} files failed one by one", sum.failures.len());
    // The source is listed while files are copied, so how much of it was listed when the copy
    // stopped varies; every file listed was tried once and refused, or not tried at all.
    assert_eq!(sum.copied, 0, "{sum:?}");
    assert_eq!(sum.failures.len() as u64 + sum.not_attempted, sum.source_files, "{sum:?}");
    assert!(sum.source_files > 0, "{sum:?}");
    emu.stop().await;
}

/// A file still being written carries the sentinel last-write-time (1980-01-01) until its last
/// range lands: listings and properties read it as no time, so it never shows in a plan, a
/// report or a copy's destination, and a sync copies it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_progress_marker_time_never_leaks_into_listings() {
    let (store, s, back) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    write_tree(s.path(), &[("half.bin", b"0123456789")]);
    let share = files_url(&emu, "drshare/marker", &sas("rwdlacup"));
    let Endpoint::Files(remote) = &share else { unreachable!() };
    let client = FilesClient::new(remote.clone());
    client.create_dir("").await.unwrap();
    client.create_file("half.bin", 10, drscript_sync::azure_files::client::sentinel()).await.unwrap();
    let listed = client.list("").await.unwrap().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].mtime, None, "the listing shows the marker: {:?}", listed[0]);
    assert_eq!(client.properties("half.bin").await.unwrap().last_write_time, None);
    // Copied out, the file gets no 1980 time; copied in again, the source (with a time) wins.
    run(&share, &local(back.path()), &SyncOptions::default()).await.unwrap();
    let mtime = std::fs::metadata(back.path().join("half.bin")).unwrap().modified().unwrap();
    assert!(mtime > std::time::UNIX_EPOCH + std::time::Duration::from_secs(86_400 * 365 * 20), "{mtime:?}");
    let sum = run(&local(s.path()), &share, &SyncOptions::default()).await.unwrap();
    assert_eq!(sum.copied, 1, "{sum:?}");
    emu.stop().await;
}

/// Azure Files keeps a file's Content-MD5 through later writes (an SMB client's, a Put Range)
/// without checking it. A hash compare trusts a stored MD5 only when drscript set it for the
/// last-write-time the file still has; a file written since is read and hashed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_compare_reads_a_file_whose_stored_md5_is_stale() {
    let (store, s, back) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = emulator(store.path()).await;
    write_tree(s.path(), &[("a.bin", b"0123456789abcdef"), ("b.bin", b"unchanged")]);
    let rw = sas("rwdlacup");
    let share = files_url(&emu, "prod/stale", &rw);
    run(&local(s.path()), &share, &SyncOptions::default()).await.unwrap();
    run(&share, &local(back.path()), &SyncOptions::default()).await.unwrap();
    let Endpoint::Files(remote) = &share else { unreachable!() };
    let client = FilesClient::new(remote.clone());
    let before = client.properties("a.bin").await.unwrap();
    assert!(before.md5_current && before.md5.is_some(), "an upload's MD5 is trusted: {before:?}");

    // An SMB-like write: the same size, new bytes, a new last-write-time, the old MD5 kept.
    let url = format!("http://{}/{ACCOUNT}/prod/stale/a.bin?comp=range&{rw}", emu.addr);
    let resp = reqwest::Client::new()
        .put(&url)
        .header("x-ms-version", "2025-05-05")
        .header("x-ms-range", "bytes=0-3")
        .header("x-ms-write", "update")
        .header("x-ms-file-last-write-time", "now")
        .body("WXYZ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let after = client.properties("a.bin").await.unwrap();
    assert_eq!(after.md5, before.md5, "the service kept the stale MD5");
    assert!(!after.md5_current, "{after:?}");

    let hash = SyncOptions { compare: drscript_sync::Compare::Hash, ..SyncOptions::default() };
    let sum = run(&share, &local(back.path()), &hash).await.unwrap();
    assert_eq!((sum.copied, sum.skipped), (1, 1), "{sum:?}");
    assert_eq!(std::fs::read(back.path().join("a.bin")).unwrap(), b"WXYZ456789abcdef");
    emu.stop().await;
}

/// A mirror's deletions are retried like its copies: through a share that answers 500 or 503 to
/// three requests in ten, every extra file is deleted and every source file copied (without
/// retries, twenty deletions in a row would all succeed about once in a thousand runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_deletes_through_a_flaky_share() {
    let (store, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = faulty_emulator(store.path(), "files=error:0.3", 7).await;
    let on_share = store.path().join(ACCOUNT).join("drshare/m");
    let extras: Vec<(String, &[u8])> = (0..20).map(|i| (format!("old/x{i}.txt"), b"stale" as &[u8])).collect();
    let extras: Vec<(&str, &[u8])> = extras.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    write_tree(&on_share, &extras);
    generate(s.path(), 20, 3);
    let opts =
        SyncOptions { mirror: true, max_delete: drscript_sync::MaxDelete::Percent(100.0), ..SyncOptions::default() };
    let sum = run(&local(s.path()), &files_url(&emu, "drshare/m", &sas("rwdlacup")), &opts).await.unwrap();
    assert_eq!((sum.copied, sum.deleted), (20, 20), "{sum:?}");
    assert_eq!(tree(s.path()), tree(&on_share));
    emu.stop().await;
}

/// The Files emulator over `store` with the sandbox's fault `spec` (`files=...`, seeded).
async fn faulty_emulator(store: &Path, spec: &str, seed: u64) -> azure_files::FilesEmulator {
    use drscript_sandbox::faults::{FaultSpec, Service};
    drscript_base::redact::register(KEY);
    let spec: FaultSpec = spec.parse().unwrap();
    let injector = spec.injector(Service::Files, seed, "files");
    azure_files::start_with_faults(store, &[(ACCOUNT, KEY)], "127.0.0.1:0", injector).await.unwrap()
}
