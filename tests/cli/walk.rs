//! A generated walk over the commands an operator has, against the sandbox with remote shares:
//! failover, failback, fence, resume, a `next` line of `drscript status` followed as typed, a
//! switch killed at a random step, and PROD's region taken down and restored — chosen at random
//! (seeded), 10 to 14 per walk, two walks. After every drscript command the sandbox's raw state
//! (`sandbox status`, the DNS zone file, the shares' bytes), not drscript's words, must show:
//!
//! 1. at most one side processes (listener replicas > 0 or scheduler running; a region that is down
//!    processes nothing) — a split the sandbox made by restoring PROD may only outlive a command
//!    that changed nothing (refused) or was killed;
//! 2. after exit 0, DNS points at a side that serves (runtime and listener ready, scheduler
//!    running), unless that side's region is down;
//! 3. no newer file on the serving side is replaced by an older one: the application writes marker
//!    files (a new one and a rewritten one in `app/recovery`, a rewritten queue file on the
//!    RabbitMQ volume) on the side that serves before each command, and on a switch's source once
//!    its pre-copy finished; after a command that exits 0 or 3, the side that serves then holds
//!    every marker the last serving side held, with its content — unless a run said that side's
//!    data was not copied (the region-down branch without a readable source, a switch keeping the
//!    target's data);
//! 4. exit codes are 0, 2 (and then nothing changed: replicas, schedulers, DNS, shares, storage
//!    account) or 3; 1 only for a killed run;
//! 5. a `next` hint followed as typed is accepted (0 or 3, never 2).
//!
//! The seed and every operation are printed. `DRSCRIPT_WALK_SEED=N` replays a seed (walk `i` uses
//! `N + i`); `DRSCRIPT_WALK_OPS=outage,failover,next:0` runs that one sequence instead (ops:
//! `failover`, `failback`, `fence:ENV`, `resume`, `next:I`, `outage`, `restore`,
//! `kill:failover:K` / `kill:failback:K` = killed once K steps finished).

use drscript_test_support::world;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use world::{RUNBOOKS, World, journal, tree};

const WALKS: u64 = 2;
/// Where the markers are written, in a side's share folder (a folder every switch copies).
const MARKERS: &str = "app/recovery";
/// The marker every operation rewrites on the serving side: a copy in the wrong direction, or of
/// an older version, leaves an older content on the new serving side.
const LATEST: &str = "walk-latest.txt";
/// A queue file on the RabbitMQ volume, rewritten with the markers: that volume is mirrored, so a
/// stale source overwrites (or deletes) what the serving side's RabbitMQ wrote since.
const QUEUE: &str = "rabbitmq/walk-queue.rdq";
/// What a switch says when it did not copy the source's data (the region-down branch continuing
/// with the target's own copy, or a switch keeping the target's data).
const NOT_COPIED: [&str; 3] = ["was not copied", "nothing is copied", "wrote since is lost (RPO"];
/// No operation of the sandbox takes this long; a command still running then hangs.
const TIMEOUT: Duration = Duration::from_secs(150);

/// xorshift64*: the sequence of a seed does not depend on a crate's version.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that neighbouring seeds start far apart (and never at 0).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Failover,
    Failback,
    Fence(String),
    Resume,
    /// Follow status's `next[i]` as typed.
    Next(usize),
    Outage,
    Restore,
    /// Start `failover` or `failback` and kill it once this many steps finished.
    Kill(String, usize),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Failover => write!(f, "failover"),
            Op::Failback => write!(f, "failback"),
            Op::Fence(env) => write!(f, "fence:{env}"),
            Op::Resume => write!(f, "resume"),
            Op::Next(i) => write!(f, "next:{i}"),
            Op::Outage => write!(f, "outage"),
            Op::Restore => write!(f, "restore"),
            Op::Kill(runbook, steps) => write!(f, "kill:{runbook}:{steps}"),
        }
    }
}

impl Op {
    fn parse(text: &str) -> Op {
        let parts: Vec<&str> = text.trim().split(':').collect();
        let number = |s: &str| s.parse().unwrap_or_else(|_| panic!("DRSCRIPT_WALK_OPS: {text}: not a number"));
        match parts.as_slice() {
            ["failover"] => Op::Failover,
            ["failback"] => Op::Failback,
            ["fence", env] => Op::Fence(env.to_string()),
            ["resume"] => Op::Resume,
            ["next", i] => Op::Next(number(i)),
            ["outage"] => Op::Outage,
            ["restore"] => Op::Restore,
            ["kill", runbook @ ("failover" | "failback"), k] => Op::Kill(runbook.to_string(), number(k)),
            _ => panic!("DRSCRIPT_WALK_OPS: unknown operation {text}"),
        }
    }
}

/// One side as the sandbox holds it.
#[derive(Debug)]
struct Side {
    listener: i64,
    listener_ready: i64,
    runtime_ready: i64,
    scheduler_running: bool,
    /// Its region is down (the cluster does not answer).
    down: bool,
}

impl Side {
    fn processes(&self) -> bool {
        !self.down && (self.listener > 0 || self.scheduler_running)
    }

    fn serves(&self) -> bool {
        self.listener_ready > 0 && self.runtime_ready > 0 && self.scheduler_running
    }
}

/// The sandbox's raw state: the sides and where the application record points.
#[derive(Debug)]
struct Raw {
    sides: BTreeMap<String, Side>,
    /// The environment whose target the `app` record holds (`None`: none of them).
    dns: Option<String>,
    app_record: Value,
}

impl Raw {
    fn processing(&self) -> Vec<&str> {
        self.sides.iter().filter(|(_, s)| s.processes()).map(|(n, _)| n.as_str()).collect()
    }

    /// The side where the application writes: the one that processes, or in a split the one DNS
    /// points at.
    fn serving(&self) -> Option<String> {
        match self.processing().as_slice() {
            [one] => Some(one.to_string()),
            [] => None,
            many => self.dns.clone().filter(|d| many.contains(&d.as_str())),
        }
    }

    fn summary(&self) -> String {
        let sides: Vec<String> = self
            .sides
            .iter()
            .map(|(n, s)| {
                format!(
                    "{n}: listener {}/{} runtime ready {} scheduler {}{}",
                    s.listener_ready,
                    s.listener,
                    s.runtime_ready,
                    if s.scheduler_running { "running" } else { "paused" },
                    if s.down { " (region down)" } else { "" }
                )
            })
            .collect();
        format!("{}; DNS app → {:?} {}", sides.join("; "), self.dns, self.app_record)
    }
}

/// What a refused command must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    kube: BTreeMap<String, Value>,
    zone: String,
    shares: BTreeMap<String, Vec<u8>>,
    storage: Value,
}

/// What one drscript command did.
struct Ran {
    code: Option<i32>,
    stderr: String,
    /// The step after which it was killed.
    killed_after: Option<String>,
    command: String,
    took: Duration,
}

struct Walk<'w> {
    world: &'w World,
    name: String,
    /// DNS target → environment, from `[dns.records.app]` of the sandbox's config.
    targets: BTreeMap<String, String>,
    prod_down: bool,
    /// The side that served last (when an operation started, or when a switch's pre-copy finished)
    /// and its markers then.
    served: Option<(String, BTreeMap<String, Vec<u8>>)>,
    /// A run since `served` was read said it did not copy the source's data.
    not_copied: bool,
    done: Vec<String>,
    ops: usize,
}

fn stderr_tail(stderr: &str, lines: usize) -> String {
    let all: Vec<&str> = stderr.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `[dns.records.app] targets = { prod = "…", dr = "…" }` of the sandbox's config, as target → name.
fn dns_targets(world: &World) -> BTreeMap<String, String> {
    let config = std::fs::read_to_string(world.path().join("sbx/drscript.toml")).unwrap();
    let section = config.split("[dns.records.app]").nth(1).expect("[dns.records.app] in the sandbox's config");
    let line = section.lines().find(|l| l.trim_start().starts_with("targets")).expect("app targets");
    let pairs = regex::Regex::new(r#"([A-Za-z0-9_-]+)\s*=\s*"([^"]+)""#).unwrap();
    let targets: BTreeMap<String, String> =
        pairs.captures_iter(line).map(|c| (c[2].to_string(), c[1].to_string())).collect();
    assert!(targets.len() == 2, "{line}");
    targets
}

impl<'w> Walk<'w> {
    fn new(world: &'w World, name: String) -> Walk<'w> {
        Walk {
            targets: dns_targets(world),
            world,
            name,
            prod_down: false,
            served: None,
            not_copied: false,
            done: Vec::new(),
            ops: 0,
        }
    }

    fn raw(&self) -> Raw {
        let status = self.world.status();
        let mut sides = BTreeMap::new();
        for (name, e) in status["environments"].as_object().unwrap() {
            let w = |name: &str, field: &str| e["workloads"][name][field].as_i64().unwrap_or(0);
            sides.insert(
                name.clone(),
                Side {
                    listener: w("ac-ac-listener", "replicas"),
                    listener_ready: w("ac-ac-listener", "ready"),
                    runtime_ready: w("ac-ac-runtime", "ready"),
                    scheduler_running: e["scheduler"].as_str().unwrap().eq_ignore_ascii_case("running"),
                    down: e["outage"]["cluster"] != "open",
                },
            );
        }
        let zone: Value =
            serde_json::from_str(&std::fs::read_to_string(self.world.path().join("sbx/dns-zone.json")).unwrap())
                .unwrap();
        let app_record = zone["zones"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|z| z["records"].as_array().unwrap().iter())
            .find(|r| r["name"] == "app")
            .cloned()
            .unwrap_or(Value::Null);
        let values: Vec<&str> =
            app_record["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let dns = match values.as_slice() {
            [one] => self.targets.get(*one).cloned(),
            _ => None,
        };
        Raw { sides, dns, app_record }
    }

    fn snapshot(&self) -> Snapshot {
        let status = self.world.status();
        let mut kube = BTreeMap::new();
        for (env, e) in status["environments"].as_object().unwrap() {
            let replicas: BTreeMap<&String, &Value> =
                e["workloads"].as_object().unwrap().iter().map(|(w, v)| (w, &v["replicas"])).collect();
            kube.insert(env.clone(), serde_json::json!({"replicas": replicas, "scheduler": e["scheduler"]}));
        }
        let storage: Vec<Value> = status["components"]["arm"]["storage_accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| serde_json::json!([a["name"], a["sku"]["name"], a["properties"]["primaryLocation"]]))
            .collect();
        Snapshot {
            kube,
            zone: std::fs::read_to_string(self.world.path().join("sbx/dns-zone.json")).unwrap(),
            shares: tree(&self.world.path().join("sbx/shares")),
            storage: Value::Array(storage),
        }
    }

    /// The markers on `env`'s shares: `app/recovery/walk-*` and the queue file.
    fn markers(&self, env: &str) -> BTreeMap<String, Vec<u8>> {
        let share = self.world.path().join(format!("sbx/shares/{env}"));
        let mut out: BTreeMap<String, Vec<u8>> = tree(&share.join(MARKERS))
            .into_iter()
            .filter(|(k, _)| k.starts_with("walk-"))
            .map(|(k, v)| (format!("{MARKERS}/{k}"), v))
            .collect();
        if let Ok(queue) = std::fs::read(share.join(QUEUE)) {
            out.insert(QUEUE.to_string(), queue);
        }
        out
    }

    /// The application writes on the side that serves: a new marker and a new `walk-latest.txt`.
    fn write_markers(&mut self, raw: &Raw) {
        if let Some(side) = raw.serving() {
            self.write_markers_on(&side, &format!("walk-{}.txt", self.ops));
        }
    }

    fn write_markers_on(&mut self, side: &str, name: &str) {
        let dir = self.world.path().join(format!("sbx/shares/{side}/{MARKERS}"));
        std::fs::create_dir_all(&dir).unwrap();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let text = format!("{} op {} on {side} at {nanos}\n", self.name, self.ops);
        std::fs::write(dir.join(name), &text).unwrap();
        std::fs::write(dir.join(LATEST), &text).unwrap();
        std::fs::write(self.world.path().join(format!("sbx/shares/{side}/{QUEUE}")), &text).unwrap();
        self.served = Some((side.to_string(), self.markers(side)));
        self.not_copied = false;
    }

    /// A line under the current operation's.
    fn note(&self, text: &str) {
        println!("{} op {}:   {text}", self.name, self.ops);
    }

    fn fail(&self, op: &Op, ran: Option<&Ran>, what: String) -> ! {
        let run = ran.map_or(String::new(), |r| {
            format!(
                "\ncommand: {} → exit {:?}{}\nstderr (end):\n{}",
                r.command,
                r.code,
                r.killed_after.as_ref().map_or(String::new(), |s| format!(" (killed after `{s}`)")),
                stderr_tail(&r.stderr, 40)
            )
        });
        panic!(
            "{}: op {} `{op}` broke an invariant: {what}\nsequence: {}\nreplay: DRSCRIPT_WALK_OPS={}{run}",
            self.name,
            self.ops,
            self.done.join(" → "),
            self.done.iter().map(|d| d.split_whitespace().next().unwrap()).collect::<Vec<_>>().join(",")
        )
    }

    fn status(&self) -> Value {
        let out = self.world.drscript(&["status", "--json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: status --json: {e}: {}", self.name, String::from_utf8_lossy(&out.stderr)))
    }

    /// A random operation that makes sense to an operator looking at `status`.
    fn choose(&self, rng: &mut Rng, status: &Value) -> Op {
        let mut menu: Vec<(usize, Op)> = vec![(2, Op::Failover), (2, Op::Failback)];
        menu.push((if status["unfinished_run"].is_null() { 1 } else { 3 }, Op::Resume));
        let hints = status["next"].as_array().map_or(0, Vec::len);
        for i in 0..hints {
            menu.push((4, Op::Next(i)));
        }
        let pending: Vec<String> = status["fencing_pending"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().map(String::from))
            .collect();
        if pending.is_empty() {
            menu.push((1, Op::Fence(["prod", "dr"][rng.below(2)].to_string())));
        }
        for env in pending {
            menu.push((3, Op::Fence(env)));
        }
        menu.push(if self.prod_down { (3, Op::Restore) } else { (2, Op::Outage) });
        // Mostly the switch that moves service (the other one has nothing to do), at a step within
        // its length (a planned switch finishes 25 steps, a region-down one 15).
        let away_from_dr = status["verdict"]["side"] == "dr" || status["dns"]["points_at"] == "dr";
        let runbook = if rng.below(4) == 0 { rng.below(2) == 0 } else { away_from_dr };
        let runbook = if runbook { "failback" } else { "failover" }.to_string();
        let steps = if self.prod_down { 14 } else { 24 };
        menu.push((3, Op::Kill(runbook, 1 + rng.below(steps))));
        let total: usize = menu.iter().map(|(w, _)| w).sum();
        let mut pick = rng.below(total);
        for (w, op) in menu {
            if pick < w {
                return op;
            }
            pick -= w;
        }
        unreachable!()
    }

    /// Runs drscript with `args`; with `kill_after`, kills it once that many steps of its run
    /// finished (if it is still running then). While a switch pre-copies, its source still serves:
    /// once the pre-copy finished, the application writes a marker there (the copy inside the
    /// downtime must bring it along).
    fn run(&mut self, args: &[String], kill_after: Option<usize>) -> Ran {
        // The run that moves: a new folder, or (resume) an old one whose journal grows.
        let lengths: BTreeMap<PathBuf, usize> =
            self.world.runs().into_iter().map(|r| (r.clone(), journal(&r).len())).collect();
        let grew = |r: &PathBuf| journal(r).len() > lengths.get(r).copied().unwrap_or(0);
        let log = self.world.path().join(format!("op-{}.stderr", self.ops));
        let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let mut child = self
            .world
            .command(&args_ref)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut current: Option<PathBuf> = None;
        let mut wrote_after_precopy = false;
        let mut killed_after = None;
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if current.is_none() {
                current = self.world.runs().into_iter().find(grew);
            }
            if let Some(run) = &current {
                let records = journal(run);
                let fresh = &records[lengths.get(run).copied().unwrap_or(0).min(records.len())..];
                let finished: Vec<&Value> = fresh.iter().filter(|r| r["event"] == "step_finished").collect();
                let precopied = finished.iter().find_map(|r| {
                    let id = r["id"].as_str()?;
                    let rest = id.strip_prefix("Pre-copy state ")?;
                    (!id.contains('/') && r["outcome"] == "ok").then(|| rest.split(' ').next().unwrap().to_string())
                });
                if let Some(source) = precopied.filter(|_| !wrote_after_precopy) {
                    wrote_after_precopy = true;
                    self.write_markers_on(&source, &format!("walk-{}-after-precopy.txt", self.ops));
                    // Written too late (the copy inside the downtime may have listed the files
                    // already: this test was not scheduled in time): nothing to hold the run to.
                    let copying = |r: &Value| {
                        r["event"] == "step_started" && r["id"].as_str().is_some_and(|i| i.starts_with("Copy state"))
                    };
                    if journal(run).iter().skip(lengths.get(run).copied().unwrap_or(0)).any(copying) {
                        self.note("the marker after the pre-copy came late: not checked");
                        self.served = None;
                    }
                }
                if let Some(k) = kill_after.filter(|k| finished.len() >= *k) {
                    child.kill().unwrap();
                    let status = child.wait().unwrap();
                    let id = &finished[k - 1]["id"];
                    let title = records
                        .iter()
                        .find(|r| r["event"] == "step_started" && &r["id"] == id)
                        .map_or_else(|| id.to_string(), |r| r["title"].as_str().unwrap_or_default().to_string());
                    killed_after = Some(title);
                    break status.code();
                }
            }
            if started.elapsed() > TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{}: `drscript {}` still ran after {TIMEOUT:?}\nsequence: {}\n{}",
                    self.name,
                    args.join(" "),
                    self.done.join(" → "),
                    stderr_tail(&std::fs::read_to_string(&log).unwrap_or_default(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(if kill_after.is_some() { 2 } else { 10 }));
        };
        Ran {
            code,
            stderr: std::fs::read_to_string(&log).unwrap_or_default(),
            killed_after,
            command: format!("drscript {}", args.join(" ").replace(&format!("{RUNBOOKS}/"), "")),
            took: started.elapsed(),
        }
    }

    /// Performs `op` and checks the invariants after it.
    fn step(&mut self, op: Op, status: &Value) {
        self.ops += 1;
        let runbook = |name: &str| format!("{RUNBOOKS}/{name}.rhai");
        let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        match op {
            Op::Outage | Op::Restore => {
                let (args, down) = if op == Op::Outage {
                    (["outage", "prod", "region"].as_slice(), true)
                } else {
                    (["restore", "prod"].as_slice(), false)
                };
                self.world.sandbox(args);
                self.prod_down = down;
                println!("{} op {}: {op}: sandbox {}", self.name, self.ops, args.join(" "));
                self.done.push(format!("{op}"));
                return;
            }
            _ => {}
        }
        let (args, hint, kill_after) = match &op {
            Op::Failover => (strings(&["run", &runbook("failover"), "--yes"]), false, None),
            Op::Failback => (strings(&["run", &runbook("failback"), "--yes", "--ack-all-manual"]), false, None),
            Op::Fence(env) => {
                (strings(&["run", &runbook("fence"), "--yes", "--var", &format!("env={env}")]), false, None)
            }
            Op::Resume => (strings(&["resume", "--yes", "--ack-all-manual"]), false, None),
            Op::Kill(name, k) => (strings(&["run", &runbook(name), "--yes", "--ack-all-manual"]), false, Some(*k)),
            Op::Next(i) => {
                let Some(hint) = status["next"][*i]["command"].as_str() else {
                    println!(
                        "{} op {}: {op}: status has no such hint ({}), skipped",
                        self.name, self.ops, status["next"]
                    );
                    self.done.push(format!("{op} (skipped)"));
                    return;
                };
                let words: Vec<&str> = hint.split_whitespace().collect();
                assert_eq!(words.first(), Some(&"drscript"), "{}: a hint is a drscript command: {hint}", self.name);
                let mut args = strings(&words[1..]);
                args.push("--yes".into());
                if words.iter().any(|w| ["failover.rhai", "failback.rhai", "resume"].contains(w)) {
                    args.push("--ack-all-manual".into());
                }
                (args, true, None)
            }
            Op::Outage | Op::Restore => unreachable!(),
        };

        let raw_before = self.raw();
        let split_before = raw_before.processing().len() > 1;
        self.write_markers(&raw_before);
        let before = self.snapshot();
        let ran = self.run(&args, kill_after);
        let killed = ran.killed_after.is_some();
        if NOT_COPIED.iter().any(|s| ran.stderr.contains(s)) {
            self.not_copied = true;
        }
        println!(
            "{} op {}: {op}: `{}` → exit {:?}{} in {:.1}s",
            self.name,
            self.ops,
            ran.command,
            ran.code,
            ran.killed_after.as_ref().map_or(String::new(), |s| format!(", killed after `{s}`")),
            ran.took.as_secs_f64()
        );
        if ran.code == Some(2)
            && let Some(why) = ran.stderr.lines().find(|l| l.starts_with("error:"))
        {
            self.note(why);
        }
        let outcome = if killed { "killed".to_string() } else { ran.code.map_or("signal".into(), |c| c.to_string()) };
        self.done.push(format!("{op} ({outcome})"));
        let raw = self.raw();

        // 4. Exit codes.
        if !killed && !matches!(ran.code, Some(0 | 2 | 3)) {
            self.fail(&op, Some(&ran), format!("exit {:?} (only 0, 2 and 3 are allowed)", ran.code));
        }
        // 5. A hint is accepted as typed.
        if hint && ran.code == Some(2) {
            self.fail(&op, Some(&ran), "status's hint, typed as shown, was refused (exit 2)".into());
        }
        // 4. A refusal changed nothing.
        if ran.code == Some(2) && !killed {
            let after = self.snapshot();
            if after != before {
                let mut diffs = Vec::new();
                if after.kube != before.kube {
                    diffs.push(format!("workloads {:?} → {:?}", before.kube, after.kube));
                }
                if after.zone != before.zone {
                    diffs.push(format!("DNS zone {} → {}", before.zone, after.zone));
                }
                if after.storage != before.storage {
                    diffs.push(format!("storage account {} → {}", before.storage, after.storage));
                }
                let changed: Vec<&String> = after
                    .shares
                    .keys()
                    .chain(before.shares.keys())
                    .filter(|k| after.shares.get(*k) != before.shares.get(*k))
                    .take(10)
                    .collect();
                if !changed.is_empty() {
                    diffs.push(format!("share files {changed:?}"));
                }
                self.fail(&op, Some(&ran), format!("refused (exit 2) but changed: {}", diffs.join("; ")));
            }
        }
        // 1. At most one side processes.
        let processing = raw.processing();
        if processing.len() > 1 && !(split_before && (ran.code == Some(2) || killed)) {
            self.fail(&op, Some(&ran), format!("{processing:?} process at once: {}", raw.summary()));
        }
        if ran.code == Some(0) && !killed {
            // 2. DNS points at a side that serves.
            match raw.dns.as_deref().map(|d| (d, &raw.sides[d])) {
                Some((_, side)) if side.down || side.serves() => {}
                _ => self.fail(
                    &op,
                    Some(&ran),
                    format!("exit 0 but DNS points at no side that serves: {}", raw.summary()),
                ),
            }
        }
        // 3. The new serving side has what the old one had.
        if matches!(ran.code, Some(0 | 3))
            && !killed
            && let (Some(to), Some((from, markers))) = (raw.serving(), &self.served)
        {
            if self.not_copied {
                self.note(&format!("{to} serves; a run said {from}'s data was not copied: markers not checked"));
                return;
            }
            if &to != from {
                self.note(&format!(
                    "service moved {from} → {to}: checking {} marker(s) of {from} on {to}",
                    markers.len()
                ));
            }
            let now = self.markers(&to);
            let wrong: Vec<String> = markers
                .iter()
                .filter(|(name, text)| now.get(*name) != Some(*text))
                .map(|(name, text)| {
                    format!(
                        "{name}: {from} had {:?}, {to} has {:?}",
                        String::from_utf8_lossy(text).trim(),
                        now.get(name).map(|t| String::from_utf8_lossy(t).trim().to_string())
                    )
                })
                .collect();
            if !wrong.is_empty() {
                self.fail(
                    &op,
                    Some(&ran),
                    format!(
                        "{to} serves without what {from} had when it last served (and no run said it did not copy it):\n  {}",
                        wrong.join("\n  ")
                    ),
                );
            }
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: expected a number")))
}

/// One walk in its own sandbox: `ops` as given, or `count` chosen by `seed`.
fn walk(name: String, seed: u64, scripted: Option<Vec<Op>>) {
    let started = Instant::now();
    let world = World::start(&["--remote-shares"]);
    let mut rng = Rng::new(seed);
    let count = scripted.as_ref().map_or(10 + rng.below(5), Vec::len);
    let mut walk = Walk::new(&world, name);
    for i in 0..count {
        let status = walk.status();
        let op = match &scripted {
            Some(ops) => ops[i].clone(),
            None => walk.choose(&mut rng, &status),
        };
        walk.step(op, &status);
    }
    println!("{}: {count} operations in {:.1}s: {}", walk.name, started.elapsed().as_secs_f64(), walk.done.join(" → "));
}

#[test]
fn random_walks_over_the_operators_commands_keep_the_invariants() {
    if let Ok(ops) = std::env::var("DRSCRIPT_WALK_OPS") {
        let ops: Vec<Op> = ops.split(',').filter(|s| !s.trim().is_empty()).map(Op::parse).collect();
        println!("walk of DRSCRIPT_WALK_OPS: {}", ops.iter().map(Op::to_string).collect::<Vec<_>>().join(","));
        walk("scripted walk".into(), 0, Some(ops));
        return;
    }
    let seed = env_number("DRSCRIPT_WALK_SEED")
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 % 1_000_000_000);
    println!("walk seed {seed} ({WALKS} walks, walk i uses seed {seed} + i); replay with DRSCRIPT_WALK_SEED={seed}");
    std::thread::scope(|s| {
        let walks: Vec<_> = (0..WALKS)
            .map(|i| {
                let seed = seed.wrapping_add(i);
                s.spawn(move || walk(format!("walk {i} (DRSCRIPT_WALK_SEED={seed})"), seed, None))
            })
            .collect();
        let mut failed = None;
        for handle in walks {
            if let Err(panic) = handle.join() {
                failed.get_or_insert(panic);
            }
        }
        if let Some(panic) = failed {
            std::panic::resume_unwind(panic);
        }
    });
}
