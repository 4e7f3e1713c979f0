//! The operator's screen: a failover against the sandbox run in a pseudo-terminal, its screen
//! kept by a terminal emulator (vt100) and read while the run goes on; and the same failover
//! without a terminal, which must keep the plain log lines.

use drscript_test_support::world;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use regex::Regex;
use world::{BIN, RUNBOOKS, World};

const ROWS: u16 = 60;
const COLS: u16 = 110;

/// Secret values the sandbox hands out (keys, passwords, tokens): none may reach the screen.
fn secrets(world: &World) -> Vec<String> {
    let dir = world.path().join("sbx/secrets");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(json) => out.extend(json["status"]["token"].as_str().map(str::to_string)),
            Err(_) => out.push(text.trim().to_string()),
        }
    }
    out.retain(|s| s.len() >= 8);
    assert!(out.len() >= 4, "the sandbox's secrets: {out:?}");
    out
}

/// drscript in a pseudo-terminal, its output kept by a terminal emulator.
struct Pty {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn portable_pty::MasterPty + Send>,
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    reading: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    fn spawn(dir: &Path, args: &[&OsStr]) -> Pty {
        let pair = native_pty_system().openpty(PtySize { rows: ROWS, cols: COLS, pixel_width: 0, pixel_height: 0 });
        let pair = pair.unwrap();
        let mut cmd = CommandBuilder::new(&*BIN);
        cmd.args(args);
        cmd.cwd(dir);
        cmd.env_remove("NO_COLOR");
        cmd.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let rows = NonZeroU16::new(ROWS).unwrap();
        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, NonZeroU16::new(COLS).unwrap(), 0)));
        let raw = Arc::new(Mutex::new(Vec::<u8>::new()));
        let mut reader = pair.master.try_clone_reader().unwrap();
        let reading = {
            let (parser, raw) = (parser.clone(), raw.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    parser.lock().unwrap().process(&buf[..n]);
                    raw.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        Pty { child, master: pair.master, parser, raw, reading: Some(reading) }
    }

    /// The screen's rows, trailing blanks cut (indicatif's padded lines run into each other in
    /// `contents()`).
    fn rows(&self) -> Vec<String> {
        self.parser.lock().unwrap().screen().rows(0, COLS).map(|r| r.trim_end().to_string()).collect()
    }

    /// The rows that overflowed: indicatif pads each line with spaces to the last column and lets
    /// the terminal wrap, so a line that was too long is one that wraps with text in its last
    /// column.
    fn overflowing(&self) -> Vec<String> {
        let parser = self.parser.lock().unwrap();
        let screen = parser.screen();
        screen
            .rows(0, COLS)
            .enumerate()
            .filter(|(i, _)| {
                let last = screen.cell(*i as u16, COLS - 1).map(|c| c.contents().trim().to_string());
                screen.row_wrapped(*i as u16) && last.is_some_and(|c| !c.is_empty())
            })
            .map(|(_, row)| row)
            .collect()
    }

    fn exited(&mut self) -> Option<bool> {
        self.child.try_wait().unwrap().map(|s| s.success())
    }

    fn type_line(&mut self, text: &str) {
        let mut writer = self.master.take_writer().unwrap();
        writer.write_all(format!("{text}\r").as_bytes()).unwrap();
        writer.flush().unwrap();
    }

    /// After the child exited: waits until its last output has reached the screen model (the
    /// reader ends when the terminal's other side closes; at most 10 s), then returns everything
    /// written to the terminal, escape codes included. The screen read before this may miss the
    /// last frame.
    fn finish(&mut self) -> String {
        if let Some(reading) = self.reading.take() {
            let waited = Instant::now();
            while !reading.is_finished() && waited.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        String::from_utf8_lossy(&self.raw.lock().unwrap()).into_owned()
    }
}

/// What the screen showed while the run went on.
#[derive(Default)]
struct Seen {
    scale_waits: Vec<String>,
    copies: Vec<String>,
    wrapped: Vec<String>,
}

#[test]
fn a_failover_on_a_terminal_shows_what_runs_what_it_waits_for_and_how_it_ended() {
    // Pods take 1.5 s to start and the file service answers slowly: long enough to be watched.
    let world = World::start_with_delays("1.5", "0.3", &["--remote-shares", "--faults", "files=slow:120ms"]);
    let config = world.config();
    let script = format!("{RUNBOOKS}/failover.rhai");
    let args =
        [OsStr::new("--config"), config.as_os_str(), OsStr::new("run"), OsStr::new(&script), OsStr::new("--yes")];
    let mut pty = Pty::spawn(world.path(), &args);

    let scale_wait = Regex::new(r"Scale up dr \w+ +[\d.]+ s +dr ac-ac-\w+ \d+/\d+ ready").unwrap();
    let copy = Regex::new(r"copy [\w/]+ \d+/\d+\+? files, [\d.]+ \w+/[\d.]+ \w+").unwrap();
    let mut seen = Seen::default();
    let started = Instant::now();
    let ok = loop {
        for row in pty.rows() {
            seen.scale_waits.extend(scale_wait.find(&row).map(|m| m.as_str().to_string()));
            seen.copies.extend(copy.find(&row).map(|m| m.as_str().to_string()));
        }
        seen.wrapped.extend(pty.overflowing());
        if let Some(ok) = pty.exited() {
            break ok;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "the failover did not finish");
        std::thread::sleep(Duration::from_millis(25));
    };
    let raw = pty.finish();
    let rows = pty.rows();
    let screen = rows.join("\n");
    assert!(ok, "the failover failed:\n{screen}");

    assert!(!seen.scale_waits.is_empty(), "no scale step showed its ready count; the screen at the end:\n{screen}");
    assert!(!seen.copies.is_empty(), "no copy showed files and bytes; the screen at the end:\n{screen}");
    assert!(seen.wrapped.is_empty(), "lines longer than the terminal's {COLS} columns: {:?}", seen.wrapped);

    // Every top-level step, with its time, in script order; then the report, HTML first.
    let run = world.the_run();
    // Parallel top-level branches start in any order: script order is the numbers'.
    let mut titles: Vec<(u32, String)> = world::journal(&run)
        .iter()
        .filter(|r| r["event"] == "step_started")
        .filter_map(|r| Some((r["number"].as_str()?.parse().ok()?, r["title"].as_str()?.to_string())))
        .collect();
    titles.sort();
    assert!(titles.len() >= 5, "{titles:?}");
    let lines = &rows;
    let mut at = 0;
    for (number, title) in &titles {
        let line = Regex::new(&format!(r"^✓ {number} {} +\d+\.\d s$", regex::escape(title))).unwrap();
        let found = lines.iter().position(|l| line.is_match(l));
        let found = found.unwrap_or_else(|| panic!("no finished line for step {number} {title}:\n{screen}"));
        assert!(found >= at, "step {number} is out of script order:\n{screen}");
        at = found;
    }
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    let html = lines.iter().position(|l| l.contains(&format!("{id}/report.html")));
    let md = lines.iter().position(|l| l.contains(&format!("{id}/report.md")));
    assert!(html.is_some() && html < md, "the report paths, HTML first:\n{screen}");
    assert!(screen.contains(&format!("✓ run {id} finished in")), "{screen}");
    assert!(screen.contains("RPO"), "the failover records an RPO:\n{screen}");

    for secret in secrets(&world) {
        assert!(!raw.contains(&secret), "a secret reached the terminal");
    }
    let sig = Regex::new(r"sig=[^*]").unwrap();
    assert!(!sig.is_match(&raw), "a SAS signature reached the terminal");
}

#[test]
fn the_same_failover_without_a_terminal_keeps_the_plain_log_lines() {
    let world = World::start(&[]);
    let script = format!("{RUNBOOKS}/failover.rhai");
    // No NO_COLOR: stderr being a pipe is what keeps the plain lines.
    let out = world.command(&["run", &script, "--yes"]).env_remove("NO_COLOR").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains('\x1b'), "escape codes in a log:\n{stderr}");
    for line in ["INFO ▶ 1 ", "INFO ✓ 1 ", "INFO ▶ 2 Quiesce prod", "INFO ✓ 2 Quiesce prod (", "finished in"] {
        assert!(stderr.contains(line), "no `{line}` line:\n{stderr}");
    }
    assert!(stderr.lines().last().is_some_and(|l| l.contains("; report: ")), "{stderr}");
    // One line per sync, naming the shares as the config does, without their local paths.
    let syncs: Vec<&str> = stderr.lines().filter(|l| l.contains("→ dr.shares.app/web/repository")).collect();
    assert_eq!(syncs.len(), 2, "the pre-copy and the copy, once each:\n{stderr}");
    for line in &syncs {
        assert!(
            line.contains("INFO sync_share prod.shares.app/web/repository → dr.shares.app/web/repository: copied ")
        );
        assert!(!line.contains("sbx/shares"), "a local path in {line}");
    }
    assert!(!stderr.contains(&world.path().join("sbx/shares").display().to_string()), "{stderr}");
}

#[test]
fn a_question_takes_the_live_view_off_the_screen_until_it_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ask.rhai"),
        r#"
step("Before", || sleep(0.3));
step("Ask", || {
    step("Wait beside", || sleep(0.2));
    confirm("Is the DR database promoted?");
});
step("After", || sleep(0.1));
"#,
    )
    .unwrap();
    let mut pty = Pty::spawn(dir.path(), &[OsStr::new("run"), OsStr::new("ask.rhai")]);
    let started = Instant::now();
    let asked = loop {
        let rows = pty.rows();
        if rows.iter().any(|r| r.starts_with("Continue? [yes/no]")) {
            break rows;
        }
        assert!(pty.exited().is_none(), "the run ended without asking:\n{}", rows.join("\n"));
        assert!(started.elapsed() < Duration::from_secs(30), "no question:\n{}", rows.join("\n"));
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = asked.join("\n");
    // The question stands alone: the finished step above it, no live line (spinner) anywhere.
    assert!(asked.iter().any(|r| r == ">>> Is the DR database promoted?"), "{text}");
    assert!(asked.iter().any(|r| r.starts_with("✓ 1 Before")), "{text}");
    let spinner = Regex::new("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]").unwrap();
    assert!(!spinner.is_match(&text), "the live view stayed on the screen during the question:\n{text}");
    pty.type_line("yes");
    let ok = loop {
        if let Some(ok) = pty.exited() {
            break ok;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the run did not go on:\n{}", pty.rows().join("\n"));
        std::thread::sleep(Duration::from_millis(20));
    };
    pty.finish();
    let rows = pty.rows();
    let screen = rows.join("\n");
    assert!(ok, "{screen}");
    for step in [r"^✓ 1 Before +\d+\.\d s$", r"^✓ 2 Ask +\d+\.\d s$", r"^✓ 3 After +\d+\.\d s$"] {
        let step = Regex::new(step).unwrap();
        assert!(rows.iter().any(|r| step.is_match(r)), "no `{step}`:\n{screen}");
    }
}
