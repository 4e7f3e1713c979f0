//! The sandbox: a simulated PROD and DR pair on 127.0.0.1.
pub mod kube_api;
