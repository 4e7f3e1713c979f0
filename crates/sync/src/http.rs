//! The HTTP client of a remote endpoint: its timeouts and the certificate authorities it trusts.

use std::time::Duration;

use crate::endpoint::Remote;

/// How long a request may wait for a connection or the next bytes, unless the endpoint says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The certificates of a PEM bundle, or why it is not one.
pub fn certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    match reqwest::Certificate::from_pem_bundle(pem) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err("no certificate in it".to_string()),
        Err(e) => Err(drscript_base::error::chain(&e)),
    }
}

/// `builder` trusting the certificate authorities of the PEM bundle `pem` besides the system's.
/// A bundle is checked where it is read (`[azure] ca_file`, [`crate::Endpoint::trusting`]), so
/// here one that holds no certificate adds nothing.
pub fn trusting(mut builder: reqwest::ClientBuilder, pem: Option<&[u8]>) -> reqwest::ClientBuilder {
    for root in pem.map(certificates).and_then(Result::ok).unwrap_or_default() {
        builder = builder.add_root_certificate(root);
    }
    builder
}

/// A client for `remote`: a connection within 15 s (or the endpoint's timeout when shorter), the
/// next bytes of an answer within the endpoint's timeout, and its extra certificate authorities
/// (checked by [`crate::Endpoint::trusting`]) trusted besides the system's. `idle_per_host`
/// keeps that many connections for reuse.
pub fn client(remote: &Remote, idle_per_host: Option<usize>) -> reqwest::Client {
    let timeout = remote.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut builder =
        reqwest::Client::builder().connect_timeout(timeout.min(Duration::from_secs(15))).read_timeout(timeout);
    if let Some(n) = idle_per_host {
        builder = builder.pool_max_idle_per_host(n);
    }
    trusting(builder, remote.extra_roots.as_deref()).build().unwrap_or_default()
}
