//! Azure Files → Azure Files with account keys in the config: the copy runs server-side (Put
//! Range From URL with a read SAS minted from the source's key), so no file content passes
//! through this machine. The Files emulator counts the Get File requests that returned content.

use std::process::Command;

use drscript::sandbox::azure_files;

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
