//! `sync_share` from a runbook through the built binary: plan (no contact), dry run (lists, no
//! change), live (syncs), with shares from the config, one of them on the Files emulator with its
//! SAS in an environment variable that never shows up in any output.

use drscript_test_support::sync_common;

use std::path::Path;
use std::process::Command;

use drscript_sandbox::azure_files;
use drscript_sync::azure_files::auth::account_sas;
use sync_common::*;

const ACCOUNT: &str = "scriptacct";
const KEY: &str = "c2NyaXB0LXRlc3Qta2V5LTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZA==";

fn drscript(dir: &Path, args: &[&str], sas: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drscript"))
        .args(args)
        .current_dir(dir)
        .env("DR_SAS", sas)
        .env("NO_COLOR", "1")
        .env_remove("DRSCRIPT_CONFIG")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn all_files(dir: &Path) -> String {
    let mut s = String::new();
    fn walk(d: &Path, s: &mut String) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, s);
            } else if let Ok(t) = std::fs::read_to_string(&p) {
                s.push_str(&t);
            }
        }
    }
    walk(dir, &mut s);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_share_plans_dry_runs_and_syncs_config_shares() {
    let (work, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let emu = azure_files::start(store.path(), &[(ACCOUNT, KEY)]).await.unwrap();
    std::fs::create_dir_all(store.path().join(ACCOUNT).join("drshare")).unwrap();
    let prod = work.path().join("prod-share");
    write_tree(
        &prod,
        &[("web/repository/a.xml", b"<a/>"), ("web/repository/sub/b.xml", b"<b/>"), ("recovery/r.dat", b"r")],
    );
    let sas = account_sas(ACCOUNT, KEY, "rwdlc", chrono::Utc::now() + chrono::Duration::hours(1));
    let sig = url::form_urlencoded::parse(sas.as_bytes()).find(|(k, _)| k == "sig").unwrap().1.into_owned();
    let config = two_share_config(&prod, &format!("http://{}/{ACCOUNT}/drshare", emu.addr));
    std::fs::write(work.path().join("drscript.toml"), config).unwrap();
    std::fs::write(
        work.path().join("copy.rhai"),
        r#"
let prod = env("prod");
let dr = env("dr");
step("copy web/repository", || {
    let s = sync_share(prod.shares.app.sub("web/repository"), dr.shares.app.sub("web/repository"));
    info(`copied ${s.copied} skipped ${s.skipped}`);
});
"#,
    )
    .unwrap();
    let dr_dir = store.path().join(ACCOUNT).join("drshare/web/repository");

    let (code, out) = drscript(work.path(), &["plan", "copy.rhai"], &sas);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sync_share"), "{out}");
    assert!(!dr_dir.exists(), "a plan contacts nothing");

    let (code, out) = drscript(work.path(), &["run", "copy.rhai", "--dry-run", "--yes"], &sas);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would copy a.xml") && out.contains("would copy sub/b.xml"), "{out}");
    assert!(!dr_dir.exists(), "a dry run changes nothing");

    let (code, out) = drscript(work.path(), &["run", "copy.rhai", "--yes"], &sas);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("copied 2 skipped 0"), "{out}");
    assert_eq!(contents(&prod.join("web/repository")), contents(&dr_dir));

    let (code, out) = drscript(work.path(), &["run", "copy.rhai", "--yes"], &sas);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("copied 0 skipped 2"), "{out}");
    assert!(!out.contains(&sig), "{out}");
    assert!(!all_files(work.path()).contains(&sig), "the SAS signature leaked into the state dir");
    emu.stop().await;
}
