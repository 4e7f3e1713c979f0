//! The sync benchmark of issue 4 item 8: the same trees for every tool, three phases each
//! (full sync, no-change re-sync, re-sync after changing 1 % and deleting 1 %), the destination
//! checked against the source after every phase, ratios printed.
//!
//! Run with `scripts/bench-sync.sh` (release build). `BENCH_SCALE` (default 1) scales the file
//! counts; `BENCH_MEM_FILES` (default 100000) sizes the peak-memory run; `BENCH_AZURITE=0` skips
//! the Azurite half. Every tool runs as a child process, timed the same way.
//! `bench_sync drsync SRC DST [flags]` is drscript's sync command line (the `drscript sync` flags).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Parser;
use md5::Digest;

#[derive(Parser)]
struct DrSync {
    #[command(flatten)]
    args: drscript::sync::SyncArgs,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("drsync") {
        let parsed = DrSync::parse_from(std::iter::once("drsync".to_string()).chain(argv[2..].iter().cloned()));
        let code = match drscript::sync::run_cli(&parsed.args, None) {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("{e}");
                e.exit_code()
            }
        };
        std::process::exit(code);
    }
    bench();
}

struct Tree {
    name: &'static str,
    small: usize,
    big: usize,
    tiny: bool,
}

fn scale() -> f64 {
    std::env::var("BENCH_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0)
}

fn generate(root: &Path, t: &Tree) {
    let n = ((t.small as f64) * scale()).max(10.0) as usize;
    for i in 0..n {
        let rel = format!("a{}/b{}/c{}/f{i}.dat", i % 10, (i / 10) % 10, (i / 100) % 5);
        let size = if t.tiny { 16 + i % 48 } else { 1024 + (i * 7919) % 15_000 };
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let content: Vec<u8> = (0..size).map(|k| ((k * 31 + i * 7) % 251) as u8).collect();
        std::fs::write(p, content).unwrap();
    }
    for i in 0..t.big {
        let p = root.join(format!("big/b{i}.bin"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let content: Vec<u8> = (0..8 * 1024 * 1024).map(|k: usize| ((k / 7 + i) % 253) as u8).collect();
        std::fs::write(p, content).unwrap();
    }
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Changes 1 % of the files (one byte longer) and deletes another 1 %.
fn mutate(root: &Path) {
    let all = files(root);
    let step = (all.len() / (all.len() / 100).max(1)).max(2);
    for (k, p) in all.iter().enumerate() {
        if k % step == 0 {
            let mut c = std::fs::read(p).unwrap();
            c.push(b'!');
            std::fs::write(p, c).unwrap();
        } else if k % step == 1 {
            std::fs::remove_file(p).unwrap();
        }
    }
}

fn digest(root: &Path) -> BTreeMap<String, String> {
    files(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            (rel, hex::encode(md5::Md5::digest(std::fs::read(&p).unwrap())))
        })
        .collect()
}

/// Runs a command, returns (seconds, peak RSS KiB from /usr/bin/time).
fn timed(cmd: &[String]) -> (f64, u64) {
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("PEAK_KB=%M")
        .args(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("/usr/bin/time runs (apt-get install time)");
    let secs = start.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        panic!("{} failed:\n{}", drscript::redact::redacted(cmd.join(" ")), drscript::redact::redacted(&err));
    }
    let kb = err
        .lines()
        .filter_map(|l| l.strip_prefix("PEAK_KB="))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (secs, kb)
}

fn s(v: &str) -> String {
    v.to_string()
}

struct Row {
    place: &'static str,
    tree: &'static str,
    tool: String,
    full: f64,
    nochange: f64,
    change: f64,
    peak_kb: u64,
}

fn local_tools(me: &str, src: &Path, dst: &Path) -> Vec<(String, Vec<String>)> {
    let (sp, dp) = (src.display().to_string(), dst.display().to_string());
    vec![
        (s("drscript"), vec![s(me), s("drsync"), sp.clone(), dp.clone(), s("--mirror"), s("--max-delete"), s("100%")]),
        (s("rsync"), vec![s("rsync"), s("-a"), s("--delete"), format!("{sp}/"), format!("{dp}/")]),
        (s("rclone"), vec![s("rclone"), s("sync"), sp, dp, s("--transfers"), s("16"), s("--checkers"), s("16")]),
    ]
}

fn bench() {
    let me = std::env::current_exe().unwrap().display().to_string();
    let base = tempfile::Builder::new().prefix("bench-sync-").tempdir().unwrap();
    let trees = [
        Tree { name: "2k small", small: 2000, big: 0, tiny: false },
        Tree { name: "2k small + 16×8 MiB", small: 2000, big: 16, tiny: false },
        Tree { name: "20k tiny", small: 20_000, big: 0, tiny: true },
    ];
    let mut rows = Vec::new();
    let local = std::env::var("BENCH_LOCAL").as_deref() != Ok("0");
    for (ti, t) in trees.iter().enumerate().filter(|_| local) {
        for tool in ["drscript", "rsync", "rclone"] {
            let src = base.path().join(format!("l{ti}-{tool}-src"));
            let dst = base.path().join(format!("l{ti}-{tool}-dst"));
            generate(&src, t);
            let cmd = local_tools(&me, &src, &dst).into_iter().find(|(n, _)| n == tool).unwrap().1;
            let (full, kb1) = timed(&cmd);
            assert_eq!(digest(&src), digest(&dst), "{tool} full");
            let (nochange, kb2) = timed(&cmd);
            mutate(&src);
            let (change, kb3) = timed(&cmd);
            assert_eq!(digest(&src), digest(&dst), "{tool} after change");
            println!("local, {}: {tool} full {full:.2} s, no-change {nochange:.2} s, changed {change:.2} s", t.name);
            rows.push(Row {
                place: "local",
                tree: t.name,
                tool: tool.into(),
                full,
                nochange,
                change,
                peak_kb: kb1.max(kb2).max(kb3),
            });
            let _ = std::fs::remove_dir_all(&src);
            let _ = std::fs::remove_dir_all(&dst);
        }
    }
    if std::env::var("BENCH_AZURITE").as_deref() != Ok("0") {
        azurite(&me, base.path(), &trees, &mut rows);
    }
    print_table(&rows);
    memory(&me, base.path());
}

fn memory(me: &str, base: &Path) {
    let n: usize = std::env::var("BENCH_MEM_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let src = base.join("mem-src");
    for i in 0..n {
        let p = src.join(format!("x{}/y{}/f{i}", i % 100, (i / 100) % 100));
        if i < 10_000 {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        }
        std::fs::write(&p, b"x").unwrap();
    }
    let dst = base.join("mem-dst");
    let cmd = vec![s(me), s("drsync"), src.display().to_string(), dst.display().to_string()];
    let (full, kb) = timed(&cmd);
    let (again, kb2) = timed(&cmd);
    println!(
        "\npeak memory, {n} files, local full sync: {:.1} MiB in {full:.1} s; no-change re-sync: {:.1} MiB in {again:.1} s (goal < 100 MiB)",
        kb as f64 / 1024.0,
        kb2 as f64 / 1024.0
    );
}

const AZ_ACCOUNT: &str = "devstoreaccount1";
const AZ_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn azurite(me: &str, base: &Path, trees: &[Tree], rows: &mut Vec<Row>) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let main = repo.join(".tools/npm/node_modules/azurite/dist/src/blob/main.js");
    let azcopy = repo.join(".tools/npm/node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Command::new("node")
        .arg(&main)
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("node + azurite (tests/support/requirements-sync.sh)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _azurite = Kill(child);
    let port: u16 = loop {
        let l = lines.next().expect("azurite output").unwrap();
        if let Some(p) = l.split("listens on http://127.0.0.1:").nth(1) {
            break p.trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let sas = drscript::azure_files::auth::account_sas(
        AZ_ACCOUNT,
        AZ_KEY,
        "rwdlacup",
        chrono::Utc::now() + chrono::Duration::hours(6),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let container = |name: &str| {
        let url = format!("http://127.0.0.1:{port}/{AZ_ACCOUNT}/{name}?restype=container&{sas}");
        rt.block_on(async { http.put(&url).header("x-ms-version", "2025-01-05").send().await })
            .unwrap_or_else(|e| panic!("create container {name}: {}", drscript::redact::redacted(e.to_string())));
        format!("http://127.0.0.1:{port}/{AZ_ACCOUNT}/{name}")
    };
    for (ti, t) in trees.iter().enumerate() {
        let mut ceiling_list = 0.0;
        let mut ceiling_put = 0.0;
        for tool in ["drscript", "rclone", "azcopy"] {
            let src = base.join(format!("az{ti}-{tool}-src"));
            generate(&src, t);
            let c = container(&format!("t{ti}{tool}"));
            let sp = src.display().to_string();
            let cmd: Vec<String> = match tool {
                "drscript" => vec![
                    s(me),
                    s("drsync"),
                    sp.clone(),
                    format!("blob+{c}?{sas}"),
                    s("--mirror"),
                    s("--max-delete"),
                    s("100%"),
                ],
                "rclone" => vec![
                    s("rclone"),
                    s("sync"),
                    sp.clone(),
                    format!(":azureblob,sas_url='{c}?{sas}':"),
                    s("--transfers"),
                    s("16"),
                    s("--checkers"),
                    s("16"),
                ],
                _ => vec![
                    azcopy.display().to_string(),
                    s("sync"),
                    sp.clone(),
                    format!("{c}?{sas}"),
                    s("--delete-destination=true"),
                    s("--from-to=LocalBlob"),
                ],
            };
            let back = base.join(format!("az{ti}-{tool}-back"));
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let (full, _) = timed(&cmd);
                let pull = vec![
                    s(me),
                    s("drsync"),
                    format!("blob+{c}?{sas}"),
                    back.display().to_string(),
                    s("--mirror"),
                    s("--max-delete"),
                    s("100%"),
                ];
                timed(&pull);
                assert_eq!(digest(&src), digest(&back), "{tool} on azurite, full");
                let (nochange, _) = timed(&cmd);
                mutate(&src);
                let (change, _) = timed(&cmd);
                timed(&pull);
                assert_eq!(digest(&src), digest(&back), "{tool} on azurite, after change");
                (full, nochange, change)
            }));
            match attempt {
                Ok((full, nochange, change)) => {
                    println!(
                        "azurite, {}: {tool} full {full:.2} s, no-change {nochange:.2} s, changed {change:.2} s",
                        t.name
                    );
                    rows.push(Row {
                        place: "azurite",
                        tree: t.name,
                        tool: tool.into(),
                        full,
                        nochange,
                        change,
                        peak_kb: 0,
                    })
                }
                Err(_) => println!("azurite, {}: {tool} failed (see its output above); left out of the table", t.name),
            }
            if tool == "drscript" {
                // The ceiling: a raw flat listing of the container twice (both sides of a
                // comparison), and raw puts of the same files, 16 at a time.
                let list_url = format!("{c}?restype=container&comp=list&{sas}");
                let start = Instant::now();
                for _ in 0..2 {
                    let mut marker = String::new();
                    loop {
                        let u =
                            if marker.is_empty() { list_url.clone() } else { format!("{list_url}&marker={marker}") };
                        let body = rt
                            .block_on(async { http.get(&u).send().await?.text().await })
                            .unwrap_or_else(|e| panic!("list: {}", drscript::redact::redacted(e.to_string())));
                        match body.split("<NextMarker>").nth(1).and_then(|x| x.split("</NextMarker>").next()) {
                            Some(m) if !m.is_empty() => marker = m.to_string(),
                            _ => break,
                        }
                    }
                }
                ceiling_list = start.elapsed().as_secs_f64();
                let raw = container(&format!("t{ti}raw"));
                let all = files(&src);
                let start = Instant::now();
                rt.block_on(async {
                    use futures::StreamExt;
                    futures::stream::iter(all.iter())
                        .for_each_concurrent(16, |p| {
                            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
                            let url = format!("{raw}/{rel}?{sas}");
                            let http = http.clone();
                            async move {
                                let body = tokio::fs::read(p).await.unwrap();
                                // Azurite resets connections under load: retry, never print the URL.
                                for _ in 0..5 {
                                    let sent = http
                                        .put(&url)
                                        .header("x-ms-blob-type", "BlockBlob")
                                        .header("x-ms-version", "2025-01-05")
                                        .body(body.clone())
                                        .send()
                                        .await;
                                    if sent.is_ok_and(|r| r.status().is_success()) {
                                        break;
                                    }
                                }
                            }
                        })
                        .await
                });
                ceiling_put = start.elapsed().as_secs_f64();
            }
            let _ = std::fs::remove_dir_all(&src);
            let _ = std::fs::remove_dir_all(&back);
        }
        println!(
            "azurite ceiling, {}: raw listing of both sides {ceiling_list:.2} s, raw puts of the tree {ceiling_put:.2} s",
            t.name
        );
    }
}

fn print_table(rows: &[Row]) {
    println!("\n| where | tree | tool | full s | no-change s | 1 % changed s | peak MiB |");
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: |");
    for r in rows {
        let mem = if r.peak_kb > 0 { format!("{:.0}", r.peak_kb as f64 / 1024.0) } else { "—".into() };
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {mem} |",
            r.place, r.tree, r.tool, r.full, r.nochange, r.change
        );
    }
    println!(
        "\nratios (drscript ÷ other; goals: local full ≤ 0.7 × rsync, 20k no-change ≤ 0.5 × rsync, azurite no-change ≤ 0.3 × rclone, azurite full ≤ min(rclone, azcopy)):"
    );
    for r in rows.iter().filter(|r| r.tool == "drscript") {
        for o in rows.iter().filter(|o| o.place == r.place && o.tree == r.tree && o.tool != "drscript") {
            println!(
                "  {} {} vs {}: full {:.2}, no-change {:.2}, changed {:.2}",
                r.place,
                r.tree,
                o.tool,
                r.full / o.full,
                r.nochange / o.nochange,
                r.change / o.change
            );
        }
    }
}
