//! The Kubernetes primitives' plain Rust API: `scale`, `replicas`, `workload` against one
//! environment's cluster, with the retries, waits and error messages a DR runbook needs. The
//! Rhai wrapper (`primitives::kube`) only converts arguments and goes through `Exec`.

mod cluster;
pub mod controllers;
mod failure;
mod kind;
mod observed;
mod scale;
mod wait;

pub use cluster::{Cluster, describe_target};
pub use kind::Kind;
pub use observed::WorkloadInfo;
pub use scale::{ScaleOptions, ScaleReport, check_replicas, replicas, scale, workload};
