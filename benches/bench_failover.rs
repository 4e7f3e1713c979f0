//! Benchmark (not a test): the shipped failover runbook against the sandbox with 2 s simulated
//! pod termination and start, and shares of the seeded size. Prints the total against the
//! critical path — the chain of waits no runbook can avoid: the runtime and listener terminating,
//! then RabbitMQ terminating, the copy of the state, RabbitMQ starting, then the runtime and
//! listener starting (4 × 2 s, plus the copy as measured in the same run). Goal: within 15 %.
//!
//! Run: `cargo bench --bench bench_failover`.

use std::collections::BTreeMap;
use std::time::Duration;

use drscript::exec::{Mode, Prompting};
use drscript::journal::{self, Event};
use drscript::runner::{self, RunOptions};
use drscript::sandbox::kube_api::Delays;
use drscript::sandbox::{Sandbox, SandboxOptions};

const DELAY: Duration = Duration::from_secs(2);

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let options = SandboxOptions { delays: Delays { start: DELAY, terminate: DELAY }, ..SandboxOptions::default() };
    let sandbox = runtime.block_on(Sandbox::start(&dir.path().join("sbx"), options)).expect("sandbox");
    let run = RunOptions {
        script: concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/failover.rhai").into(),
        config: Some(sandbox.config_path()),
        config_required: true,
        mode: Mode::Live,
        prompting: Prompting { assume_yes: true, ..Default::default() },
        vars: BTreeMap::new(),
        state_dir: dir.path().join("state"),
        stdlib_dir: None,
        skip_rehearsal: false,
    };
    let outcome = runner::run(&run, drscript::app::arm_cancel()).expect("failover");
    let records = journal::read(&outcome.run_dir.expect("run dir").join("journal.jsonl")).expect("journal");
    let summary = drscript::report::summarize(&records);
    let copy = summary
        .steps
        .iter()
        .find(|s| s.title.starts_with("Copy state"))
        .and_then(|s| s.end.map(|e| (e - s.start).to_std().unwrap_or_default()))
        .expect("the copy step");
    let total = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunFinished { duration_ms, .. } => Some(Duration::from_millis(*duration_ms)),
            _ => None,
        })
        .expect("finished");
    let critical = 4 * DELAY + copy;
    println!("failover against the sandbox, pod start and termination {} s", DELAY.as_secs());
    for s in summary.steps.iter().filter(|s| !s.number.contains('.')) {
        let d = s.end.map_or(0.0, |e| (e - s.start).num_milliseconds() as f64 / 1000.0);
        println!("  {:<4} {:<40} {d:>6.2} s", s.number, s.title);
    }
    println!(
        "total {:.2} s; critical path {:.2} s (4 × {} s of pod waits + {:.2} s copying); {:+.1} % — goal ≤ +15 %",
        total.as_secs_f64(),
        critical.as_secs_f64(),
        DELAY.as_secs(),
        copy.as_secs_f64(),
        (total.as_secs_f64() / critical.as_secs_f64() - 1.0) * 100.0
    );
}
