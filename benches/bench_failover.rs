//! Benchmark (not a test): the shipped failover runbook against the sandbox with 2 s simulated
//! pod termination and start, in three situations, each on a fresh sandbox in this one run:
//!
//! 1. **today's procedure** (`--var precopy=false`) with a share that dominates (5,000 files,
//!    500 MB in `web/repository`): total against the critical path — the chain of waits no
//!    runbook can avoid (runtime and listener terminating, RabbitMQ terminating, the copy,
//!    RabbitMQ starting, runtime and listener starting: 4 × 2 s plus the copy as measured).
//!    Goal: within 15 %.
//! 2. **with the pre-copy**, the same shares, and 1 % of the files rewritten on PROD between the
//!    pre-copy and the quiesce. Goals: the copy inside the downtime ≤ 0.2 × (1)'s copy; the
//!    downtime within 15 % of the pod waits plus that delta copy; the total ≤ 1.3 × (1)'s.
//! 3. **PROD's region down** (cluster and gateway refuse; its shares still readable): RTO against
//!    its critical path (DR's RabbitMQ terminating, the copy, RabbitMQ starting, runtime and
//!    listener starting: 3 × 2 s plus the copy). Goal: within 15 %.
//!
//! Run: `cargo bench --bench bench_failover`.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a test or benchmark reports on its own terminal

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use drscript_core::exec::{Mode, Prompting};
use drscript_core::journal::{self, Event, Record};
use drscript_core::runner::{self, RunOptions};
use drscript_sandbox::kube_api::Delays;
use drscript_sandbox::outage::Part;
use drscript_sandbox::{Sandbox, SandboxHandle, SandboxOptions};

const DELAY: Duration = Duration::from_secs(2);
const FILES: usize = 5_000;
const FILE_BYTES: usize = 100_000;

struct Measured {
    total: f64,
    downtime: f64,
    copy: f64,
    steps: Vec<(String, String, f64)>,
}

fn secs(a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

fn measure(records: &[Record]) -> Measured {
    let summary = drscript_core::report::summarize(records);
    let step = |prefix: &str| {
        summary.steps.iter().find(|s| s.title.starts_with(prefix)).and_then(|s| s.end.map(|e| secs(s.start, e)))
    };
    let total = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunFinished { duration_ms, .. } => Some(*duration_ms as f64 / 1000.0),
            _ => None,
        })
        .expect("finished");
    let at = |what: &str| {
        records.iter().find_map(|r| match &r.event {
            Event::Metric { name, value } if name == "downtime" && value == what => Some(r.ts),
            _ => None,
        })
    };
    let downtime = match (at("start"), at("end")) {
        (Some(a), Some(b)) => secs(a, b),
        _ => f64::NAN,
    };
    let steps = summary
        .steps
        .iter()
        .filter(|s| !s.number.contains('.'))
        .map(|s| (s.number.clone(), s.title.clone(), s.end.map_or(0.0, |e| secs(s.start, e))))
        .collect();
    Measured { total, downtime, copy: step("Copy state").expect("the copy step"), steps }
}

fn big_share(sandbox: &SandboxHandle) {
    let dir = sandbox.dir.join("shares/prod/app/web/repository/bulk");
    std::fs::create_dir_all(&dir).expect("bulk folder");
    for i in 0..FILES {
        let byte = (i % 251) as u8;
        std::fs::write(dir.join(format!("f{i:05}.bin")), vec![byte; FILE_BYTES]).expect("bulk file");
    }
    // On disk before the clock starts: write-back of 500 MB must not be timed as the copy.
    #[allow(unsafe_code)] // sync(2) has no preconditions
    unsafe {
        libc::sync()
    };
}

/// Rewrites 1 % of the bulk files once the pre-copy has finished (PROD still serves).
fn churn_after_precopy(state: &Path, share: &Path) -> std::thread::JoinHandle<usize> {
    let (state, share) = (state.to_path_buf(), share.to_path_buf());
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        while std::time::Instant::now() < deadline {
            let done = std::fs::read_dir(state.join("runs")).into_iter().flatten().flatten().any(|run| {
                journal::read(&run.path().join("journal.jsonl"))
                    .unwrap_or_default()
                    .iter()
                    .any(|r| matches!(&r.event, Event::Metric { name, .. } if name == "precopy_bytes"))
            });
            if done {
                for i in (0..FILES).step_by(100) {
                    std::fs::write(share.join(format!("f{i:05}.bin")), vec![0xee; FILE_BYTES]).expect("churn");
                }
                return FILES / 100;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        0
    })
}

fn failover(
    runtime: &tokio::runtime::Runtime,
    vars: &[(&str, &str)],
    prepare: impl FnOnce(&SandboxHandle, &Path),
) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SandboxOptions { delays: Delays { start: DELAY, terminate: DELAY }, ..SandboxOptions::default() };
    let sandbox = runtime.block_on(Sandbox::start(&dir.path().join("sbx"), options)).expect("sandbox");
    big_share(&sandbox);
    prepare(&sandbox, &dir.path().join("state"));
    let run = RunOptions {
        script: concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/failover.rhai").into(),
        config: Some(sandbox.config_path()),
        config_required: true,
        mode: Mode::Live,
        prompting: Prompting { assume_yes: true, ..Default::default() },
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        state_dir: dir.path().join("state"),
        stdlib_dir: None,
        skip_rehearsal: false,
        local_state: false,
    };
    let outcome = runner::run(&run, drscript::app::arm_cancel()).expect("failover");
    let records = journal::read(&outcome.run_dir.expect("run dir").join("journal.jsonl")).expect("journal");
    measure(&records)
}

fn print_steps(m: &Measured) {
    for (number, title, d) in &m.steps {
        println!("    {number:<4} {title:<52} {d:>6.2} s");
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let waits = 4.0 * DELAY.as_secs_f64();
    println!(
        "failover against the sandbox: pod start and termination {} s, web/repository + {FILES} files of {} kB",
        DELAY.as_secs(),
        FILE_BYTES / 1000
    );

    let today = failover(&runtime, &[("precopy", "false")], |_, _| {});
    println!("1. today's procedure (precopy=false)");
    print_steps(&today);
    let critical = waits + today.copy;
    println!(
        "   total {:.2} s; critical path {critical:.2} s (4 × {} s of pod waits + {:.2} s copying): {:+.1} % — goal ≤ +15 %",
        today.total,
        DELAY.as_secs(),
        today.copy,
        (today.total / critical - 1.0) * 100.0
    );

    let mut churned = None;
    let pre = failover(&runtime, &[], |sandbox, state| {
        churned = Some(churn_after_precopy(state, &sandbox.dir.join("shares/prod/app/web/repository/bulk")));
    });
    let churned = churned.map_or(0, |h| h.join().unwrap_or(0));
    println!("2. with the pre-copy, {churned} files rewritten on PROD between the pre-copy and the quiesce");
    print_steps(&pre);
    println!(
        "   copy inside the downtime {:.2} s = {:.2} × today's copy ({:.2} s) — goal ≤ 0.2",
        pre.copy,
        pre.copy / today.copy,
        today.copy
    );
    println!(
        "   downtime {:.2} s against pod waits + that copy {:.2} s: {:+.1} % — goal ≤ +15 %",
        pre.downtime,
        waits + pre.copy,
        (pre.downtime / (waits + pre.copy) - 1.0) * 100.0
    );
    println!(
        "   total {:.2} s = {:.2} × today's total ({:.2} s) — goal ≤ 1.3; today's downtime was {:.2} s",
        pre.total,
        pre.total / today.total,
        today.total,
        today.downtime
    );

    let down = failover(&runtime, &[], |sandbox, _| {
        let prod = sandbox.env("prod").expect("prod");
        prod.gates.outage("prod", &[Part::Cluster, Part::Gateway], false).expect("outage");
    });
    let critical = 3.0 * DELAY.as_secs_f64() + down.copy;
    println!("3. PROD's cluster and gateway down (its shares readable)");
    print_steps(&down);
    println!(
        "   total {:.2} s; critical path {critical:.2} s (3 × {} s of DR pod waits + {:.2} s copying): {:+.1} % — goal ≤ +15 %",
        down.total,
        DELAY.as_secs(),
        down.copy,
        (down.total / critical - 1.0) * 100.0
    );
}
