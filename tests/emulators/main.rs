//! The sandbox's emulators against independent clients (kubectl, the official Kubernetes Python client, Microsoft's Python SDKs) and its own lifecycle.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a test or benchmark reports on its own terminal

mod azure_sandbox;
mod azure_sdk_crosscheck;
mod entra;
mod kube_api_protocol;
mod kube_auth;
mod kube_kubectl;
mod kube_more;
mod sandbox_lifecycle;
