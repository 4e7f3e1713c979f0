//! RFC 2136 dynamic update signed with HMAC TSIG (RFC 8945), for BIND, PowerDNS, Knot and other
//! servers that take a shared TSIG key; and plain queries to the same primary server, which is
//! authoritative and so answers with the new value as soon as the update is accepted. Not for
//! Windows DNS "secure dynamic update": that signs with GSS-TSIG (Kerberos, RFC 3645), which
//! this client does not speak.
//!
//! Messages go over TCP (RFC 7766): updates and answers are never truncated and a refused
//! connection is an immediate, clear error instead of a UDP timeout.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType as WireType, TSigner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::RecordState;
use super::record::{RecordSpec, RecordType};
use crate::config::Dns;
use drscript_base::error::{Error, Result};
use drscript_base::secret::SecretRef;

/// How long one exchange with the server may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Exchanges tried before giving up on a server that drops or ignores the connection (3, 0.4 s
/// doubling, `drscript_base::retry`).
const POLICY: drscript_base::retry::Policy =
    drscript_base::retry::Policy::new(3, Duration::from_millis(400), Duration::from_secs(10));
/// Allowed clock difference for TSIG (the RFC's recommended 300 s).
const FUDGE: u16 = 300;

#[derive(Debug, Clone)]
pub struct Rfc2136 {
    server: String,
    tsig: Option<TsigKey>,
}

#[derive(Debug, Clone)]
struct TsigKey {
    name: String,
    algorithm: String,
    secret: SecretRef,
}

impl Rfc2136 {
    pub fn from_config(dns: &Dns) -> Result<Self> {
        let server = dns.server.clone().ok_or_else(|| Error::Config {
            message: "[dns] provider = \"rfc2136\" needs `server = \"host:port\"`".to_string(),
        })?;
        let tsig = match (&dns.tsig_key_name, &dns.tsig_secret) {
            (Some(name), Some(secret)) => Some(TsigKey {
                name: name.clone(),
                algorithm: dns.tsig_algorithm.clone().unwrap_or_else(|| "hmac-sha256".to_string()),
                secret: secret.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(Error::Config {
                    message: "[dns]: set both `tsig_key_name` and `tsig_secret_env`/`tsig_secret_file`".to_string(),
                });
            }
        };
        Ok(Rfc2136 { server, tsig })
    }

    /// An unsigned client of any authoritative server (lookups only).
    pub fn plain(server: &str) -> Self {
        Rfc2136 { server: server.to_string(), tsig: None }
    }

    /// For a lookup aimed at another server than the configured primary.
    pub fn with_server(&self, server: &str) -> Self {
        Rfc2136 { server: server.to_string(), tsig: self.tsig.clone() }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Asks the server for the record set `fqdn`/`record_type`.
    /// `primitive` names the caller in errors (`set_dns` reads before it writes).
    pub async fn query(&self, primitive: &str, fqdn: &str, record_type: RecordType) -> Result<Option<RecordState>> {
        let name = wire_name(fqdn)?;
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(Query::query(name.clone(), wire_type(record_type)));
        let what = format!("{record_type} {fqdn}");
        let response = self.exchange(primitive, &what, &message, None).await?;
        match response.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            ResponseCode::Refused => {
                return Err(self.error_for(
                    primitive,
                    &what,
                    "REFUSED: the server has no zone that holds this name (or does not answer queries for it)",
                ));
            }
            code => {
                return Err(self.error_for(primitive, &what, &format!("query failed: {code}")));
            }
        }
        Ok(answer_of(&response, &name, record_type))
    }

    /// Replaces the record set with the single value of `spec`: one message that deletes the
    /// RRset and adds the record, which the server applies atomically.
    pub async fn update(&self, spec: &RecordSpec) -> Result<()> {
        let zone = wire_name(&spec.zone)?;
        let name = wire_name(&spec.fqdn())?;
        let rdata = match spec.record_type {
            RecordType::A => RData::A(A(spec.value.parse().map_err(|_| Error::Usage(spec.value.clone()))?)),
            RecordType::Aaaa => RData::AAAA(AAAA(spec.value.parse().map_err(|_| Error::Usage(spec.value.clone()))?)),
            RecordType::Cname => RData::CNAME(CNAME(wire_name(&spec.value)?)),
        };
        let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Update);
        message.metadata.recursion_desired = false;
        let mut zone_query = Query::query(zone, WireType::SOA);
        zone_query.query_class = DNSClass::IN;
        message.add_zone(zone_query);
        let mut delete = Record::update0(name.clone(), 0, wire_type(spec.record_type));
        delete.dns_class = DNSClass::ANY;
        message.add_update(delete);
        let mut add = Record::from_rdata(name, spec.ttl, rdata);
        add.dns_class = DNSClass::IN;
        message.add_update(add);
        let signer = self.signer()?;
        let what = spec.target();
        let response = self.exchange("set_dns", &what, &message, signer.as_ref()).await?;
        match response.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            code => Err(self.error(&what, &self.explain_update_failure(code, &response, &spec.zone))),
        }
    }

    fn explain_update_failure(&self, code: ResponseCode, response: &Message, zone: &str) -> String {
        let key = self.tsig.as_ref().map(|k| k.name.as_str()).unwrap_or("(none)");
        let tsig_error = response.signature().and_then(|s| s.data.error);
        match tsig_error {
            Some(TsigError::BadKey) => {
                return format!(
                    "{code}/BADKEY: the server does not know TSIG key `{key}` (check tsig_key_name and tsig_algorithm)"
                );
            }
            Some(TsigError::BadSig) => {
                return format!("{code}/BADSIG: the TSIG signature was rejected: the secret of key `{key}` is wrong");
            }
            Some(TsigError::BadTime) => {
                return format!("{code}/BADTIME: the server's clock and ours differ by more than {FUDGE} s");
            }
            _ => {}
        }
        match code {
            ResponseCode::Refused => format!(
                "REFUSED: the server refused the update of zone `{zone}` (the zone does not exist there, or key `{key}` may not update it)"
            ),
            ResponseCode::NotAuth => {
                format!("NOTAUTH: the server is not authoritative for zone `{zone}` (or rejected key `{key}`)")
            }
            ResponseCode::NotZone => format!("NOTZONE: the name is not inside zone `{zone}`"),
            other => format!("update rejected: {other}"),
        }
    }

    fn signer(&self) -> Result<Option<TSigner>> {
        let Some(key) = &self.tsig else {
            return Ok(None);
        };
        let secret = key.secret.resolve()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(secret.trim()).map_err(|_| {
            Error::Secret(format!("secret `{}` ({}) is not base64", key.secret.key(), key.secret.describe()))
        })?;
        let algorithm = match key.algorithm.to_ascii_lowercase().trim_end_matches('.') {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(Error::Config {
                    message: format!(
                        "[dns] tsig_algorithm `{other}` is not supported (hmac-sha256, hmac-sha384, hmac-sha512)"
                    ),
                });
            }
        };
        TSigner::new(bytes, algorithm, wire_name(&key.name)?, FUDGE)
            .map(Some)
            .map_err(|e| Error::Config { message: format!("[dns] TSIG key `{}`: {e}", key.name) })
    }

    /// One TCP exchange: the length-prefixed message out, the length-prefixed answer in.
    async fn send_once(&self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(&self.server).await?;
        stream.write_all(&(bytes.len() as u16).to_be_bytes()).await?;
        stream.write_all(bytes).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut answer).await?;
        Ok(answer)
    }

    /// Sends one message over TCP and reads the answer; with a signer, the request is signed and
    /// a successful answer's signature is verified.
    async fn exchange(
        &self,
        primitive: &str,
        what: &str,
        message: &Message,
        signer: Option<&TSigner>,
    ) -> Result<Message> {
        let fail = |msg: &str| self.error_for(primitive, what, msg);
        let mut message = message.clone();
        let mut verifier = None;
        if let Some(signer) = signer {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            verifier = message.finalize(signer, now).map_err(|e| fail(&e.to_string()))?;
        }
        let bytes = message.to_vec().map_err(|e| fail(&e.to_string()))?;
        // A dropped connection or a server that does not answer is tried again: an update sets
        // the whole record set, so sending it twice is harmless.
        let mut tries = POLICY.start();
        let answer = loop {
            let problem = match tokio::time::timeout(EXCHANGE_TIMEOUT, self.send_once(&bytes)).await {
                Ok(Ok(answer)) => break answer,
                Ok(Err(e)) => format!("cannot reach the DNS server: {e}"),
                Err(_) => format!("no answer within {} s", EXCHANGE_TIMEOUT.as_secs()),
            };
            let Some(wait) = tries.next(None) else {
                return Err(fail(&format!("{problem} (after {} attempts)", tries.tries())));
            };
            tracing::debug!("{primitive} {what}: {problem}; retrying");
            tokio::time::sleep(wait).await;
        };
        let response = Message::from_vec(&answer).map_err(|e| fail(&e.to_string()))?;
        if response.metadata.id != message.metadata.id {
            return Err(fail("the answer's id does not match the request"));
        }
        if let (Some(verifier), ResponseCode::NoError) = (verifier.as_mut(), response.metadata.response_code) {
            verifier.verify(&answer).map_err(|e| fail(&format!("the answer's TSIG signature does not verify: {e}")))?;
        }
        Ok(response)
    }

    fn error(&self, what: &str, message: &str) -> Error {
        self.error_for("set_dns", what, message)
    }

    fn error_for(&self, primitive: &str, what: &str, message: &str) -> Error {
        Error::action(primitive, format!("{what} (rfc2136 server {})", self.server), message)
    }
}

/// The record set an answer holds for `name`/`record_type`, values sorted.
pub(super) fn answer_of(response: &Message, name: &Name, record_type: RecordType) -> Option<RecordState> {
    let mut values = Vec::new();
    let mut ttl = 0;
    for record in response.answers.iter().filter(|r| &r.name == name) {
        let value = match (&record.data, record_type) {
            (RData::A(a), RecordType::A) => a.0.to_string(),
            (RData::AAAA(a), RecordType::Aaaa) => a.0.to_string(),
            (RData::CNAME(c), RecordType::Cname) => c.0.to_ascii().trim_end_matches('.').to_string(),
            _ => continue,
        };
        ttl = record.ttl;
        values.push(value);
    }
    values.sort();
    (!values.is_empty()).then_some(RecordState { values, ttl })
}

pub(super) fn wire_type(record_type: RecordType) -> WireType {
    match record_type {
        RecordType::A => WireType::A,
        RecordType::Aaaa => WireType::AAAA,
        RecordType::Cname => WireType::CNAME,
    }
}

pub(super) fn wire_name(name: &str) -> Result<Name> {
    let mut n = Name::from_ascii(name.trim_end_matches('.'))
        .map_err(|e| Error::Usage(format!("`{name}` is not a valid DNS name: {e}")))?;
    n.set_fqdn(true);
    Ok(n)
}
