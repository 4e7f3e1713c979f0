//! Benchmark (not a test): scale a 2-pod deployment to 0 and back against the sandbox with 0.5 s
//! simulated termination and start delays, and print how far the total is above the simulated
//! delays. Goal: within 10 %.
//!
//! Run: `cargo bench --bench bench_scale` (add `--profile dev` to skip the release build).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a test or benchmark reports on its own terminal

use std::time::{Duration, Instant};

use drscript_core::config::Config;
use drscript_core::kube::{Cluster, Kind, ScaleOptions, scale};
use drscript_sandbox::kube_api::Delays;
use drscript_sandbox::{Sandbox, SandboxOptions};

const ROUNDS: u32 = 5;
const DELAY: Duration = Duration::from_millis(500);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let delays = Delays { start: DELAY, terminate: DELAY };
    let sandbox = Sandbox::start(dir.path(), SandboxOptions { shares: false, delays, ..SandboxOptions::default() })
        .await
        .expect("sandbox");
    let config = Config::load(&sandbox.config_path()).expect("config");
    let prod = Cluster::connect(config.environment("prod").expect("prod")).await.expect("cluster");
    let opts = ScaleOptions::default();
    let (mut down_total, mut up_total) = (Duration::ZERO, Duration::ZERO);
    println!(
        "scale prod deployment/ac-ac-runtime 2 → 0 → 2, {ROUNDS} rounds, start and termination delay {} ms",
        DELAY.as_millis()
    );
    for round in 1..=ROUNDS {
        let t = Instant::now();
        scale(&prod, Kind::Deployment, "ac-ac-runtime", 0, &opts).await.expect("scale to 0");
        let down = t.elapsed();
        let t = Instant::now();
        scale(&prod, Kind::Deployment, "ac-ac-runtime", 2, &opts).await.expect("scale to 2");
        let up = t.elapsed();
        println!("round {round}: down {:>4} ms, up {:>4} ms", down.as_millis(), up.as_millis());
        down_total += down;
        up_total += up;
    }
    let total = down_total + up_total;
    let floor = 2 * DELAY * ROUNDS;
    let over = (total.as_secs_f64() / floor.as_secs_f64() - 1.0) * 100.0;
    println!(
        "total {} ms for {ROUNDS} rounds; simulated delays {} ms; overhead {:.1} % ({:.0} ms per scale) — goal ≤ 10 %",
        total.as_millis(),
        floor.as_millis(),
        over,
        (total - floor).as_secs_f64() * 1000.0 / f64::from(2 * ROUNDS)
    );
}
