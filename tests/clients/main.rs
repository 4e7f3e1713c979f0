//! Core's clients against real servers (BIND, PostgreSQL, MariaDB) and the sandbox's emulators: Kubernetes, the gateway's scheduler, DNS, Azure Resource Manager.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a test or benchmark reports on its own terminal

mod azure_dns;
mod azure_storage;
mod db_mariadb;
mod db_postgres;
mod dns_rfc2136;
mod dns_sandbox;
mod kube_lifecycle;
mod kube_refusals;
mod kube_scale;
mod scheduler_gateway;
mod scheduler_tls;
