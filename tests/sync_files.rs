//! Azure Files on the emulator: local → Files, Files → Files (server-side and streamed),
//! Files → local, mirror, paging, Shared Key, SAS errors from the service, no secret in outputs.

mod sync_common;

use std::path::Path;

use drscript::azure_files::FilesClient;
use drscript::azure_files::auth::account_sas;
use drscript::sandbox::azure_files::{self, FilesEmulator};
use drscript::sync::{Credential, Endpoint, SyncMode, SyncOptions};
use sync_common::*;

const ACCOUNT: &str = "prodacct";
// A real-looking base64 key; registered as a secret like a config key would be.
const KEY: &str = "c2VjcmV0LWtleS1vZi10aGUtZW11bGF0b3ItYWNjb3VudC0wMTIzNDU2Nzg5YWJjZGVm";

async fn emulator(dir: &Path) -> FilesEmulator {
    drscript::redact::register(KEY);
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
        r.credential = Credential::SharedKey(KEY.to_string());
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
    let all = SyncOptions { max_delete: drscript::sync::MaxDelete::parse("100%").unwrap(), ..mirror() };
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
        r.credential = Credential::SharedKey("d3Jvbmcta2V5LXdyb25nLWtleQ==".into());
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
    let hash = SyncOptions { compare: drscript::sync::Compare::Hash, ..SyncOptions::default() };
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
