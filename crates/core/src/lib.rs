//! The core of drscript: everything a run needs between a validated command line and the remote
//! systems. The configuration (`config`), the execution context every primitive consults
//! (`exec`: dry run, plan, journal), the Rhai engine and its primitives (`engine`,
//! `primitives`), the runner with its lock, journal, state and reports, and the clients of the
//! systems a runbook changes: Kubernetes (`kube`), DNS (`dns`), databases (`db`), Azure Resource
//! Manager (`azure`), the Adeptia gateway's scheduler (`scheduler`), and the reading of where
//! service is (`site`).
//!
//! It may import `drscript-base` and `drscript-sync`, never the sandbox (the emulators are
//! checked against these clients and must not share their code) nor the command line. Nothing
//! here prints: a run speaks to the operator only through [`observer::RunObserver`], which the
//! command line implements.

pub mod azure;
pub mod config;
pub mod db;
pub mod dns;
pub mod engine;
pub mod estimate;
pub mod exec;
pub mod identity;
pub mod journal;
pub mod kube;
pub mod lint;
pub mod lock;
pub mod modules;
pub mod notify;
pub mod observer;
pub mod plan;
pub mod primitives;
pub mod prompt;
pub mod report;
pub mod report_html;
pub mod runner;
pub mod scheduler;
pub mod script;
pub mod script_error;
pub mod shared;
pub mod site;
pub mod state;
pub mod steps;

pub use drscript_base::{Error, Result};
