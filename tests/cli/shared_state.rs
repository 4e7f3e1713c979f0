//! Many operators, one truth (`[state] backend = "azure-blob"`): two drscript processes with
//! separate state directories ("alice" and "bob", two laptops) against one Azurite container.
//! One lock (a blob lease naming its holder), one run history, resume from the other laptop,
//! a lock broken by force and recorded, the backend unreachable at start or lost mid-run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use drscript_test_support::sync_common::azurite::{self, Azurite};
use drscript_test_support::world::{RUNBOOKS, World, assert_no_step_ran_twice, journal};
use serde_json::Value;

use crate::receiver::Receiver;

/// The account key as the config's `account_key_env` names it: it must never be printed.
const KEY_VAR: &str = "DRSCRIPT_STATE_KEY";

fn state_config(port: u16, lease: u32) -> String {
    format!(
        "[state]\nbackend = \"azure-blob\"\nurl = \"blob+http://127.0.0.1:{port}/{}/drstate\"\naccount_key_env = \"{KEY_VAR}\"\nlease_seconds = {lease}\n",
        azurite::ACCOUNT
    )
}

/// One operator: a user name and a state directory of their own.
struct Operator<'a> {
    world: &'a World,
    user: &'static str,
    dir: PathBuf,
    hook: Option<String>,
}

impl<'a> Operator<'a> {
    fn new(world: &'a World, user: &'static str) -> Operator<'a> {
        Operator { world, user, dir: world.path().join(format!("state-{user}")), hook: None }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = self.world.command(&[]);
        c.arg("--state-dir").arg(&self.dir).args(args).env("USER", self.user).env(KEY_VAR, azurite::KEY);
        if let Some(hook) = &self.hook {
            c.env("HOOK", hook);
        }
        c
    }

    fn drscript(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().unwrap();
        assert_no_secret(&out);
        out
    }

    fn spawn_failover(&self) -> Child {
        self.command(&["run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn journal_of(&self, run: &str) -> Vec<Value> {
        journal(&self.dir.join("runs").join(run))
    }

    fn run_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("journal.jsonl").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The account key (and any SAS signature made from it) never reaches an output.
fn assert_no_secret(out: &Output) {
    let all = text(out);
    assert!(!all.contains(azurite::KEY), "the account key was printed:\n{all}");
    assert!(!all.contains("sig="), "a SAS signature was printed:\n{all}");
}

/// Whether a journal shows the switch's downtime started and a change made after it (the
/// switch is half done from then on).
fn changed(records: &[Value]) -> bool {
    records.iter().skip_while(|r| !(r["event"] == "metric" && r["name"] == "downtime" && r["value"] == "start")).any(
        |r| {
            r["event"] == "action"
                && r["outcome"] == "ok"
                && !["confirm", "manual", "notify"].contains(&r["primitive"].as_str().unwrap_or_default())
        },
    )
}

/// Waits until `op`'s only run has made a change; returns its id.
fn wait_for_a_change(op: &Operator, child: &mut Child) -> String {
    let started = Instant::now();
    loop {
        if let Some(id) = op.run_ids().into_iter().find(|id| changed(&op.journal_of(id))) {
            return id;
        }
        if child.try_wait().unwrap().is_some() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("the failover ended before it changed anything:\n{stderr}");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the failover never made a change");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn blob_journal(az: &Azurite, run: &str) -> String {
    let url =
        format!("http://127.0.0.1:{}/{}/drstate/runs/{run}/journal.jsonl?{}", az.port, azurite::ACCOUNT, az.sas());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let r = reqwest::Client::new().get(&url).header("x-ms-version", "2021-12-02").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "GET the shared journal of {run}");
        r.text().await.unwrap()
    })
}

fn files_under(root: &Path) -> String {
    drscript_test_support::world::tree(root).into_values().map(|v| String::from_utf8_lossy(&v).into_owned()).collect()
}

/// The scenario of the issue: alice's failover holds the shared lock; bob's run is refused
/// naming her; bob's `status` shows the switch in progress; alice's laptop dies (SIGKILL); bob
/// sees the half-done switch and who still holds the lock, breaks it with `unlock --force`
/// (recorded, shown by `runs` to alice too), and resumes alice's run from his own state
/// directory: it finishes with no step repeated, and both laptops and the container hold the
/// same journal.
#[test]
fn a_second_operator_is_refused_sees_the_half_done_switch_breaks_the_lock_and_resumes_it() {
    let az = Azurite::start(false);
    // PROD's pods take 6 s to stop: the failover holds the lock while bob looks.
    let mut world = World::start_with_delays("0.05", "6", &[]);
    // A 30 s lease: still alive when bob comes to break it after the kill.
    world.extra_config = state_config(az.port, 30);
    let alice = Operator::new(&world, "alice");
    let bob = Operator::new(&world, "bob");

    let mut child = alice.spawn_failover();
    let run = wait_for_a_change(&alice, &mut child);
    // The mirror uploads within a second of each write.
    std::thread::sleep(Duration::from_millis(1500));

    let refused = bob.drscript(&["run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(4), "{said}");
    assert!(said.contains(&format!("held by run {run} of failover.rhai (prod → dr) by alice@")), "{said}");
    assert!(said.contains("by alice@"), "{said}");
    assert!(said.contains("unlock --force"), "{said}");
    assert!(child.try_wait().unwrap().is_none(), "alice's failover was still running when bob was refused");

    let status = bob.drscript(&["status"]);
    let said = text(&status);
    assert!(said.contains(&format!("SWITCHING ({run})")), "bob's status does not show alice's switch:\n{said}");
    assert!(said.contains(&format!("Lock: held by run {run}")) && said.contains("alice@"), "{said}");

    drscript_base::sys::signal(child.id(), drscript_base::sys::Signal::Kill);
    child.wait().unwrap();
    let status = bob.drscript(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&status)));
    assert!(v["summary"].as_str().unwrap_or_default().contains("SWITCHING"), "{v}");
    assert_eq!(v["shared"]["holder"]["run"], run.as_str(), "the dead run's lease still lives: {v}");

    // Alice's lease lives on for up to 30 s: bob is refused until he breaks it.
    let held = bob.drscript(&["resume", &run, "--yes"]);
    assert_eq!(held.status.code(), Some(4), "{}", text(&held));
    let asked = bob.drscript(&["unlock"]);
    assert_eq!(asked.status.code(), Some(4), "unlock without --force breaks nothing: {}", text(&asked));
    let broke = bob.drscript(&["unlock", "--force"]);
    let said = text(&broke);
    assert_eq!(broke.status.code(), Some(0), "{said}");
    assert!(said.contains("recorded as broken by bob@"), "{said}");
    let runs = alice.drscript(&["runs"]);
    let said = text(&runs);
    assert!(
        said.contains("Lock broken by bob@") && said.contains(&format!("held by run {run} of failover.rhai")),
        "alice's `runs` does not show who broke her lock:\n{said}"
    );
    assert!(said.contains("Lock: free"), "{said}");

    let resumed = bob.drscript(&["resume", &run, "--yes"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    world.assert_serving("dr", "prod");

    let records = bob.journal_of(&run);
    assert_eq!(assert_no_step_ran_twice(&records, "bob's resume"), 1, "one resumed attempt");
    let by = |who: &str| records.iter().filter(|r| r["by"].as_str().unwrap_or_default().starts_with(who)).count();
    assert!(by("alice@") > 0 && by("bob@") > 0, "the journal says who ran each part");
    assert!(records.iter().any(|r| r["event"] == "run_finished" && r["exit_code"] == 0));
    // One journal everywhere: in the container, and on alice's laptop after she looks.
    let shared = blob_journal(&az, &run);
    assert_eq!(shared, std::fs::read_to_string(bob.dir.join("runs").join(&run).join("journal.jsonl")).unwrap());
    let runs = alice.drscript(&["runs", "--json"]);
    let v: Value = serde_json::from_slice(&runs.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&runs)));
    let listed = v["runs"].as_array().unwrap().iter().find(|r| r["run_id"] == run.as_str()).unwrap().clone();
    assert_eq!(listed["outcome"], "ok", "{listed}");
    assert_eq!(std::fs::read_to_string(alice.dir.join("runs").join(&run).join("journal.jsonl")).unwrap(), shared);
    for dir in [&alice.dir, &bob.dir] {
        assert!(!files_under(dir).contains(azurite::KEY), "the key reached {}", dir.display());
    }
}

/// A run stopped by SIGTERM (as Ctrl-C) pages "interrupted" with a resume command; pasted as it
/// came in another folder by another operator (no config there: the run's own config names the
/// shared state, so the resume takes the shared lock), it finishes the run, which pages
/// "finished". The lock was released on the way out: nothing to break.
#[test]
fn an_interrupted_run_is_paged_and_its_resume_command_works_on_the_other_laptop() {
    let az = Azurite::start(false);
    let hook = Receiver::start(vec![]);
    let mut world = World::start_with_delays("0.05", "6", &[]);
    world.extra_config = format!("{}\n[[notify]]\nname = \"bridge\"\nurl_env = \"HOOK\"\n", state_config(az.port, 15));
    let mut alice = Operator::new(&world, "alice");
    alice.hook = Some(format!("{}/hook", hook.url));
    let mut bob = Operator::new(&world, "bob");
    bob.hook = alice.hook.clone();

    let mut child = alice.spawn_failover();
    let run = wait_for_a_change(&alice, &mut child);
    drscript_base::sys::signal(child.id(), drscript_base::sys::Signal::Terminate);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let events = || -> Vec<Value> {
        hook.bodies()
            .iter()
            .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
            .filter(|v| v.get("event").is_some())
            .collect()
    };
    let seen = events();
    assert_eq!(
        seen.iter().map(|e| e["event"].as_str().unwrap()).collect::<Vec<_>>(),
        ["started", "interrupted"],
        "{seen:?}"
    );
    let resume = seen[1]["resume"].as_str().unwrap().to_string();
    assert!(resume.contains(&run), "{resume}");
    assert!(seen[1]["by"].as_str().unwrap().starts_with("alice@"), "{seen:?}");

    // Pasted by bob in another folder.
    let words: Vec<&str> = resume.split_whitespace().collect();
    assert_eq!(words[0], "drscript");
    let elsewhere = world.path().join("bob-laptop");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = Command::new(&*drscript_test_support::BIN)
        .args(&words[1..])
        .arg("--yes")
        .current_dir(&elsewhere)
        .env_remove("DRSCRIPT_CONFIG")
        .env("USER", "bob")
        .env(KEY_VAR, azurite::KEY)
        .env("HOOK", bob.hook.as_deref().unwrap())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    world.assert_serving("dr", "prod");
    let seen = events();
    let finished = seen.last().unwrap();
    assert_eq!(finished["event"], "finished", "{seen:?}");
    assert!(finished["by"].as_str().unwrap().starts_with("bob@"), "{seen:?}");
    // Bob's own state directory learns of it from the container.
    let runs = bob.drscript(&["runs", "--json"]);
    let v: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert!(v["runs"].as_array().unwrap().iter().any(|r| r["run_id"] == run.as_str() && r["outcome"] == "ok"), "{v}");
    assert_no_step_ran_twice(&bob.journal_of(&run), "resume pasted");
}

/// Unreachable at start: refused (exit 2) naming the URL and what happened, nothing changed, no
/// secret shown. `--state local` runs anyway, says so in its journal, and the next run that
/// reaches the shared state uploads it.
#[test]
fn an_unreachable_shared_state_refuses_the_run_and_state_local_is_uploaded_later() {
    let mut az = Azurite::start_on_disk(&tempfile::tempdir().unwrap().keep());
    let mut world = World::start(&[]);
    world.extra_config = state_config(az.port, 15);
    let alice = Operator::new(&world, "alice");
    az.stop();

    let refused = alice.drscript(&["run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains(&format!("http://127.0.0.1:{}/{}/drstate", az.port, azurite::ACCOUNT)), "{said}");
    assert!(said.contains("cannot be used") && said.contains("connect") && said.contains("--state local"), "{said}");
    assert!(alice.run_ids().is_empty(), "a refused run leaves no journal");
    let listener = world.kubectl("prod", &["get", "deployment", "ac-ac-listener", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(listener.trim(), "1", "nothing was changed");

    let local = alice.drscript(&["--state", "local", "run", &format!("{RUNBOOKS}/failover.rhai"), "--yes"]);
    assert_eq!(local.status.code(), Some(0), "{}", text(&local));
    assert!(text(&local).contains("--state local"), "{}", text(&local));
    let ids = alice.run_ids();
    assert_eq!(ids.len(), 1);
    let records = alice.journal_of(&ids[0]);
    assert!(
        records
            .iter()
            .any(|r| r["event"] == "log" && r["message"].as_str().unwrap_or_default().contains("--state local")),
        "the journal records the choice"
    );

    // `status` and `runs` still answer, from this laptop's runs, and say why.
    let status = alice.drscript(&["status"]);
    let said = text(&status);
    assert_eq!(status.status.code(), Some(0), "{said}");
    assert!(said.contains("ACTIVE dr") && said.contains("not reachable"), "{said}");
    let runs = alice.drscript(&["runs"]);
    assert!(
        text(&runs).contains("showing this machine's runs only") && text(&runs).contains(&ids[0]),
        "{}",
        text(&runs)
    );

    az.restart();
    let back = alice.drscript(&["run", &format!("{RUNBOOKS}/failback.rhai"), "--yes"]);
    assert_eq!(back.status.code(), Some(0), "{}", text(&back));
    assert!(text(&back).contains(&format!("run {} uploaded to the shared state", ids[0])), "{}", text(&back));
    assert_eq!(
        blob_journal(&az, &ids[0]),
        std::fs::read_to_string(alice.dir.join("runs").join(&ids[0]).join("journal.jsonl")).unwrap()
    );
}

/// The backend stops answering mid-run: the run keeps journaling locally, cannot renew its
/// lease, and stops before its next change saying so (exit 3); when the backend is back, the
/// resume uploads the journal — every event, none lost — and finishes the switch.
#[test]
fn a_backend_lost_mid_run_stops_before_the_next_change_and_loses_no_journal_event() {
    let mut az = Azurite::start_on_disk(&tempfile::tempdir().unwrap().keep());
    // Slow stops: the switch still has changes to make when its 15 s lease runs out.
    let mut world = World::start_with_delays("0.05", "8", &[]);
    world.extra_config = state_config(az.port, 15);
    let alice = Operator::new(&world, "alice");

    let mut child = alice.spawn_failover();
    let run = wait_for_a_change(&alice, &mut child);
    az.stop();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("the shared lock was lost"), "{said}");
    assert!(said.contains("uploaded by the next run"), "{said}");
    assert!(!said.contains(azurite::KEY) && !said.contains("sig="), "{said}");
    let local = std::fs::read_to_string(alice.dir.join("runs").join(&run).join("journal.jsonl")).unwrap();
    assert!(local.contains("\"run_finished\""), "the stop is journaled locally");

    az.restart();
    let resumed = alice.drscript(&["resume", &run, "--yes"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    world.assert_serving("dr", "prod");
    let shared = blob_journal(&az, &run);
    assert!(shared.starts_with(&local), "the container's journal lost events written while it was down");
    assert_eq!(shared, std::fs::read_to_string(alice.dir.join("runs").join(&run).join("journal.jsonl")).unwrap());
    assert_no_step_ran_twice(&alice.journal_of(&run), "resume after the backend came back");
}

/// A journal in the container that this version cannot read (another drscript version wrote an
/// event it does not know) is named with that version, copied beside the state directory, and
/// never overwritten or dropped.
#[test]
fn a_journal_of_another_version_is_named_kept_and_never_overwritten() {
    let az = Azurite::start(false);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(az.container("drstate"));
    let run = "20261201-000000-abcd";
    let foreign = [
        r#"{"ts":"2026-12-01T00:00:00Z","by":"carol@laptop3","event":"run_started","run_id":"20261201-000000-abcd","attempt":1,"script":"/x/failover.rhai","script_hash":"00","config":null,"mode":"live","vars":{},"pid":1,"version":"9.0.0"}"#,
        r#"{"ts":"2026-12-01T00:00:01Z","by":"carol@laptop3","event":"quorum_vote","voters":3}"#,
        r#"{"ts":"2026-12-01T00:00:02Z","by":"carol@laptop3","event":"log","level":"info","message":"after"}"#,
    ]
    .join("\n")
        + "\n";
    let url =
        format!("http://127.0.0.1:{}/{}/drstate/runs/{run}/journal.jsonl?{}", az.port, azurite::ACCOUNT, az.sas());
    runtime.block_on(async {
        let r = reqwest::Client::new()
            .put(&url)
            .header("x-ms-version", "2021-12-02")
            .header("x-ms-blob-type", "BlockBlob")
            .body(foreign.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    });
    let dir = tempfile::tempdir().unwrap();
    let config = prod_only_config(dir.path(), az.port);
    let out = Command::new(&*drscript_test_support::BIN)
        .args(["--config", config.to_str().unwrap(), "--state-dir", "st", "runs"])
        .current_dir(dir.path())
        .env(KEY_VAR, azurite::KEY)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_no_secret(&out);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains(&format!("run {run} was journaled by drscript 9.0.0")), "{said}");
    assert!(said.contains("shared-unreadable"), "{said}");
    let kept = std::fs::read_to_string(dir.path().join(format!("st/shared-unreadable/{run}.jsonl"))).unwrap();
    assert_eq!(kept, foreign, "the copy is whole");
    assert!(!dir.path().join(format!("st/runs/{run}")).exists(), "not taken for a run of this version");
    assert_eq!(blob_journal(&az, run), foreign, "the container's journal is untouched");
}

/// A live REPL session holds the shared lock as a run does: another laptop's run is refused
/// naming the session, and runs once the session ends.
#[test]
fn a_live_repl_session_holds_the_shared_lock() {
    let az = Azurite::start(false);
    let dir = tempfile::tempdir().unwrap();
    let config = prod_only_config(dir.path(), az.port);
    std::fs::write(dir.path().join("hello.rhai"), "step(\"hello\", || info(\"hello\"));\n").unwrap();
    let drscript = |user: &str, args: &[&str]| {
        let mut c = Command::new(&*drscript_test_support::BIN);
        c.args(["--config", config.to_str().unwrap(), "--state-dir", &format!("st-{user}")])
            .args(args)
            .current_dir(dir.path())
            .env("USER", user)
            .env(KEY_VAR, azurite::KEY)
            .env("NO_COLOR", "1");
        c
    };
    let mut session = drscript("alice", &["repl", "--live"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The session journals its start once it holds the lock.
    let started = Instant::now();
    let runs = dir.path().join("st-alice/runs");
    while !std::fs::read_dir(&runs).into_iter().flatten().flatten().any(|e| e.path().join("journal.jsonl").exists()) {
        assert!(session.try_wait().unwrap().is_none(), "the session ended before it took the lock");
        assert!(started.elapsed() < Duration::from_secs(60), "the session never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = drscript("bob", &["run", "hello.rhai", "--yes"]).stdin(Stdio::null()).output().unwrap();
    assert_no_secret(&out);
    let refused = text(&out);
    assert_eq!(out.status.code(), Some(4), "{refused}");
    assert!(refused.contains("of <repl> by alice@"), "{refused}");
    drop(session.stdin.take());
    assert!(session.wait().unwrap().success());
    let out = drscript("bob", &["run", "hello.rhai", "--yes"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `sandbox up` in a folder where Azurite is installed (`node_modules/.bin/azurite-blob`) serves
/// the shared state and writes `[state]`: a run there shares its lock and journal; `sandbox down`
/// stops Azurite with the rest.
#[test]
fn the_sandbox_serves_the_shared_state_when_azurite_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        format!("{}/.tools/npm/node_modules", drscript_test_support::REPO),
        dir.path().join("node_modules"),
    )
    .unwrap();
    let mut sandbox = Command::new(&*drscript_test_support::BIN)
        .args(["sandbox", "up", "--dir", "sbx"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !dir.path().join("sbx/sandbox.json").exists() {
        assert!(started.elapsed() < Duration::from_secs(90), "the sandbox did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let config = std::fs::read_to_string(dir.path().join("sbx/drscript.toml")).unwrap();
    assert!(config.contains("[state]\nbackend = \"azure-blob\""), "{config}");
    std::fs::write(dir.path().join("hello.rhai"), "step(\"hello\", || info(\"hello\"));\n").unwrap();
    let drscript = |args: &[&str]| {
        Command::new(&*drscript_test_support::BIN)
            .args(["--config", "sbx/drscript.toml"])
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = drscript(&["run", "hello.rhai", "--yes"]);
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Another laptop (another state directory) sees the run.
    let out = drscript(&["--state-dir", "elsewhere", "runs", "--json"]);
    assert_no_secret(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert!(v["shared"]["error"].is_null(), "{v}");
    assert_eq!(v["runs"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["runs"][0]["runbook"], "hello.rhai", "{v}");
    let down = Command::new(&*drscript_test_support::BIN)
        .args(["sandbox", "down", "--dir", "sbx"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert!(sandbox.wait().unwrap().success());
    let port = config.split("blob+http://127.0.0.1:").nth(1).unwrap().split('/').next().unwrap().to_string();
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(), "Azurite outlived the sandbox");
}

/// A config with one environment and the shared state in `port`'s Azurite (15 s leases), written
/// into `dir`: what the tests that need no sandbox run with.
fn prod_only_config(dir: &Path, port: u16) -> PathBuf {
    let config = dir.join("drscript.toml");
    std::fs::write(
        &config,
        format!(
            "[environments.prod]\nnamespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"https://prod.example.com\"\n\n{}",
            state_config(port, 15)
        ),
    )
    .unwrap();
    config
}
