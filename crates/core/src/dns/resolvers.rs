//! What clients are told: after the authority holds the new value, the resolvers the clients use
//! (`[dns] resolvers`) may still answer the old one from their caches until its TTL runs out.
//! `wait_resolvers` asks each of them, all at once and again with backoff, until every one
//! answers the new value or the wait is over; a resolver that lags is a warning, never a failed
//! switch: the authority is switched, and the lag ends by itself when the cache expires.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use serde::Serialize;
use tokio::net::UdpSocket;

use super::record::{RecordSpec, RecordType};
use super::rfc2136::{answer_of, wire_name, wire_type};
use crate::exec::Exec;
use drscript_base::error::{Error, Result};

/// How long one resolver may take to answer one question.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(1500);
/// Questions in a row a resolver leaves unanswered before the wait stops waiting for it.
const SILENT_ROUNDS: u32 = 3;

/// One resolver's answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResolverAnswer {
    pub resolver: String,
    pub values: Vec<String>,
    pub ttl: u32,
    /// Why there is no answer (no reply, refused, ...).
    pub error: Option<String>,
    pub agrees: bool,
}

/// What the resolvers answered when the wait ended.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Agreement {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub expected: String,
    pub agreed: usize,
    pub total: usize,
    pub answers: Vec<ResolverAnswer>,
    pub waited_ms: u64,
}

impl Agreement {
    /// `DNS app.example.com → 10.0.2.10: 2 of 3 resolvers agree`.
    pub fn describe(&self) -> String {
        format!("DNS {} → {}: {} of {} resolvers agree", self.name, self.expected, self.agreed, self.total)
    }

    /// The resolvers that do not answer the new value, each with what it answers instead.
    pub fn laggards(&self) -> Vec<String> {
        self.answers.iter().filter(|a| !a.agrees).map(ResolverAnswer::lag).collect()
    }
}

impl ResolverAnswer {
    /// `10.0.0.3 still answers 10.0.1.10 (TTL 42 s)`, `10.0.0.4: no answer within 1500 ms`.
    pub fn lag(&self) -> String {
        match &self.error {
            Some(e) => format!("{}: {e}", self.resolver),
            None if self.values.is_empty() => format!("{} answers nothing", self.resolver),
            None => format!("{} still answers {} (TTL {} s)", self.resolver, self.values.join(", "), self.ttl),
        }
    }
}

/// Asks every resolver once, all at once, whether it answers `expected` for `fqdn`.
pub async fn ask_all(
    resolvers: &[String],
    fqdn: &str,
    record_type: RecordType,
    expected: &str,
) -> Result<Vec<ResolverAnswer>> {
    let name = wire_name(fqdn)?;
    Ok(futures::future::join_all(resolvers.iter().map(|r| ask(r, &name, record_type, expected))).await)
}

/// Asks every resolver in `resolvers` for `spec`'s name until all answer `spec.value` (or, for
/// one that does not answer at all, until it stayed silent `SILENT_ROUNDS` times in a row) or
/// `timeout` has passed; outside live runs it asks once. Progress is logged as the count changes.
pub fn wait(exec: &Exec, spec: &RecordSpec, resolvers: &[String], timeout: Duration) -> Result<Agreement> {
    let fqdn = spec.fqdn();
    let started = Instant::now();
    let mut interval = Duration::from_millis(100);
    let mut last_count = None;
    let mut silent = vec![0u32; resolvers.len()];
    loop {
        let answers = exec.block_on(ask_all(resolvers, &fqdn, spec.record_type, &spec.value))?;
        let agreed = answers.iter().filter(|a| a.agrees).count();
        for (count, answer) in silent.iter_mut().zip(&answers) {
            *count = if answer.error.is_some() { *count + 1 } else { 0 };
        }
        // A resolver that has not answered SILENT_ROUNDS times in a row is not waited for: no
        // cache expiry will make it answer (it may be in the region that is down).
        let settled = silent.iter().zip(&answers).all(|(n, a)| a.agrees || *n >= SILENT_ROUNDS);
        let agreement = Agreement {
            name: fqdn.clone(),
            record_type: spec.record_type,
            expected: spec.value.clone(),
            agreed,
            total: answers.len(),
            answers,
            waited_ms: started.elapsed().as_millis() as u64,
        };
        if last_count != Some(agreed) {
            tracing::info!("{}", agreement.describe());
            last_count = Some(agreed);
        }
        if settled || !exec.is_live() || started.elapsed() >= timeout {
            return Ok(agreement);
        }
        // Shown while it sleeps until the next question (the sleep clears it when it is over).
        crate::observer::waiting(agreement.describe());
        exec.sleep(interval.min(timeout.saturating_sub(started.elapsed())))?;
        interval = (interval * 3 / 2).min(Duration::from_secs(2));
    }
}

/// One question to one resolver, recursion desired, over UDP.
async fn ask(
    resolver: &str,
    name: &hickory_proto::rr::Name,
    record_type: RecordType,
    expected: &str,
) -> ResolverAnswer {
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, exchange(resolver, name, record_type)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", ANSWER_TIMEOUT.as_millis())),
    };
    match answer {
        Ok(state) => {
            let (values, ttl) = state.map(|s| (s.values, s.ttl)).unwrap_or_default();
            let agrees = values.len() == 1 && values[0].eq_ignore_ascii_case(expected);
            ResolverAnswer { resolver: resolver.to_string(), values, ttl, error: None, agrees }
        }
        Err(error) => ResolverAnswer {
            resolver: resolver.to_string(),
            values: Vec::new(),
            ttl: 0,
            error: Some(error),
            agrees: false,
        },
    }
}

async fn exchange(
    resolver: &str,
    name: &hickory_proto::rr::Name,
    record_type: RecordType,
) -> std::result::Result<Option<super::RecordState>, String> {
    let address = address_of(resolver).await.map_err(|e| e.to_string())?;
    let local: SocketAddr = if address.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }.parse().expect("a literal address");
    let socket = UdpSocket::bind(local).await.map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket.connect(address).await.map_err(|e| format!("cannot reach it: {e}"))?;
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), wire_type(record_type)));
    let bytes = message.to_vec().map_err(|e| e.to_string())?;
    socket.send(&bytes).await.map_err(|e| format!("cannot send to it: {e}"))?;
    let mut buffer = vec![0u8; 4096];
    loop {
        let n = socket.recv(&mut buffer).await.map_err(|e| format!("no answer: {e}"))?;
        // A stray datagram (an earlier question's late answer) is not this answer.
        let Ok(response) = Message::from_vec(&buffer[..n]) else { continue };
        if response.metadata.id != message.metadata.id {
            continue;
        }
        use hickory_proto::op::ResponseCode;
        return match response.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(answer_of(&response, name, record_type)),
            code => Err(format!("answered {code}")),
        };
    }
}

/// `10.0.0.2`, `10.0.0.2:5353`, `[fd00::2]:53`, `dns.example.com` (port 53 unless given).
async fn address_of(resolver: &str) -> Result<SocketAddr> {
    if let Ok(address) = resolver.parse::<SocketAddr>() {
        return Ok(address);
    }
    if let Ok(ip) = resolver.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let with_port = if resolver.contains(':') { resolver.to_string() } else { format!("{resolver}:53") };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| Error::Other(format!("resolver {resolver}: {e}")))?
        .next()
        .ok_or_else(|| Error::Other(format!("resolver {resolver}: the name has no address")))
}

/// Checks a `[dns] resolvers` entry's form (the config loader's check; no lookup).
pub fn valid_form(resolver: &str) -> bool {
    if resolver.parse::<SocketAddr>().is_ok() || resolver.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return true;
    }
    let (host, port) = resolver.rsplit_once(':').unwrap_or((resolver, "53"));
    !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// `wait_resolvers`: [`wait`] for the configured resolvers, as a read of the run (planned in a
/// plan, asked once in a dry run). The wait is `timeout`, else `[dns] resolver_wait_secs`, else
/// the record's TTL plus 10 s (the old value's TTL is the record's own unless it was changed
/// by hand). Nothing is asked, and nothing recorded, when no resolvers are configured.
pub fn wait_resolvers(exec: &Exec, spec: &RecordSpec, timeout: Option<Duration>) -> Result<Agreement> {
    let config = exec.config()?;
    let dns = config.dns.as_ref().ok_or_else(|| Error::Config {
        message: format!("wait_resolvers: no [dns] section in {}", config.path.display()),
    })?;
    let resolvers = dns.resolvers.clone();
    let placeholder = Agreement {
        name: spec.fqdn(),
        record_type: spec.record_type,
        expected: spec.value.clone(),
        agreed: 0,
        total: resolvers.len(),
        answers: Vec::new(),
        waited_ms: 0,
    };
    if resolvers.is_empty() {
        tracing::debug!("no [dns] resolvers configured: what clients resolve for {} is not checked", spec.fqdn());
        return Ok(placeholder);
    }
    let timeout = timeout
        .or(dns.resolver_wait_secs.map(Duration::from_secs))
        .unwrap_or(Duration::from_secs(u64::from(spec.ttl) + 10));
    let target = format!("{} {} = {} ({})", spec.record_type, spec.fqdn(), spec.value, resolvers.join(", "));
    let agreement =
        exec.query("wait_resolvers", &target, || placeholder.clone(), || wait(exec, spec, &resolvers, timeout))?;
    if exec.is_live() {
        let waited = agreement.waited_ms as f64 / 1000.0;
        exec.metric("dns_resolvers", serde_json::json!(format!("{} after {waited:.1} s", agreement.describe())))?;
        if agreement.agreed < agreement.total {
            exec.warning(&format!(
                "{} after {waited:.0} s; {}: clients asking them reach the old side until their caches expire",
                agreement.describe(),
                agreement.laggards().join("; ")
            ))?;
        }
    }
    Ok(agreement)
}
