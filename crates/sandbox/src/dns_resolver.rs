//! The resolvers the sandbox's clients use: recursive DNS resolvers (UDP and TCP) that answer from the
//! sandbox's zone file, so that `wait_resolvers` and `dig` see what a client would.
//!
//! Like a real recursive resolver, each one keeps an answer for its TTL, capped at `cache` (BIND's
//! `max-cache-ttl`, Unbound's `cache-max-ttl`): with `sandbox up --dns-cache S` a rehearsal shows
//! a resolver that keeps answering the old value after a switch, counting the TTL down. The
//! default cap is 0 (no cache), so that the demo does not wait out a TTL. Answers carry RA=1 and
//! AA=0 (not authoritative); names outside the sandbox's zones are REFUSED (the sandbox reaches
//! no other DNS); a name with no record of the asked type is NOERROR with no answer (NODATA),
//! a name with no record at all NXDOMAIN; a CNAME is followed inside the zones.
//!
//! This is an emulation of the servers, written from RFC 1034/1035: it shares no code with
//! drscript's resolver client (`dns::resolvers`), and the tests cross-check it with `dig`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use drscript_base::dns_zone::{DnsZoneFile, ZoneData};
use drscript_base::error::{Error, Result};

/// A running resolver; dropping it stops it.
pub struct Resolver {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Resolver {
    /// Listens on 127.0.0.1 (an ephemeral port, UDP and TCP as resolvers do) and answers from
    /// `zone`.
    pub async fn start(zone: DnsZoneFile, cache: Duration) -> Result<Resolver> {
        let io = |e| Error::io("sandbox DNS resolver: cannot listen".to_string(), e);
        // The UDP port first, then TCP on the same number (taken again if TCP's is in use).
        let (socket, listener) = loop {
            let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(io)?;
            let port = socket.local_addr().map_err(io)?.port();
            if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                break (socket, listener);
            }
        };
        let address = socket.local_addr().map_err(io)?;
        let state = Arc::new(State { zone, cache, cached: Mutex::new(HashMap::new()) });
        let udp_state = state.clone();
        let udp = async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buffer).await else { continue };
                if let Some(answer) = udp_state.answer(&buffer[..n]) {
                    let _ = socket.send_to(&answer, peer).await;
                }
            }
        };
        let tcp = async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                tokio::spawn(serve_tcp(stream, state.clone()));
            }
        };
        let task = tokio::spawn(async move {
            tokio::join!(udp, tcp);
        });
        Ok(Resolver { address, task })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// An answer kept until `until`.
struct Cached {
    code: ResponseCode,
    records: Vec<(Name, u32, RData)>,
    until: Instant,
}

struct State {
    zone: DnsZoneFile,
    cache: Duration,
    cached: Mutex<HashMap<(String, RecordType), Cached>>,
}

impl State {
    /// The answer to one datagram; `None` for what is not a question (dropped, as servers do).
    fn answer(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        let request = Message::from_vec(datagram).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.metadata.authoritative = false;
        let question = match (request.metadata.op_code, request.queries.as_slice()) {
            (OpCode::Query, [q]) => q.clone(),
            (OpCode::Query, _) => return error(response, ResponseCode::FormErr),
            _ => return error(response, ResponseCode::NotImp),
        };
        response.add_query(question.clone());
        let key = (question.name.to_ascii().to_ascii_lowercase(), question.query_type);
        let now = Instant::now();
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let entry = match cached.get(&key).filter(|c| c.until > now) {
            Some(hit) => hit,
            None => {
                let (code, records) = match self.zone.read() {
                    Ok(zone) => resolve(&zone, &question.name, question.query_type),
                    Err(_) => (ResponseCode::ServFail, Vec::new()),
                };
                let ttl = records.iter().map(|(_, ttl, _)| *ttl).min().unwrap_or(0);
                let keep = self.cache.min(Duration::from_secs(u64::from(ttl)));
                cached.insert(key.clone(), Cached { code, records, until: now + keep });
                &cached[&key]
            }
        };
        // A cached answer's TTL counts down, as a client sees it from a real resolver.
        let left = entry.until.saturating_duration_since(now).as_secs() as u32;
        response.metadata.response_code = entry.code;
        for (name, ttl, data) in &entry.records {
            let ttl = if self.cache.is_zero() { *ttl } else { left.min(*ttl) };
            response.add_answer(Record::from_rdata(name.clone(), ttl, data.clone()));
        }
        response.to_vec().ok()
    }
}

/// Length-prefixed messages (RFC 1035 4.2.2), several per connection (RFC 7766).
async fn serve_tcp(mut stream: TcpStream, state: Arc<State>) {
    loop {
        let mut length = [0u8; 2];
        if stream.read_exact(&mut length).await.is_err() {
            return;
        }
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(length))];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        let Some(answer) = state.answer(&request) else { return };
        let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

fn error(mut response: Message, code: ResponseCode) -> Option<Vec<u8>> {
    response.metadata.response_code = code;
    response.to_vec().ok()
}

/// The records answering `name`/`asked` from the zones, following CNAMEs inside them.
fn resolve(zones: &ZoneData, name: &Name, asked: RecordType) -> (ResponseCode, Vec<(Name, u32, RData)>) {
    let mut records = Vec::new();
    let mut current = name.clone();
    for _ in 0..8 {
        let fqdn = current.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let Some((zone_name, zone)) = zones
            .zones
            .iter()
            .filter(|(z, _)| fqdn == **z || fqdn.ends_with(&format!(".{z}")))
            .max_by_key(|(z, _)| z.len())
        else {
            // Outside every zone: answered only when a CNAME led there (the chain so far).
            return (if records.is_empty() { ResponseCode::Refused } else { ResponseCode::NoError }, records);
        };
        let relative =
            if fqdn == *zone_name { "@".to_string() } else { fqdn[..fqdn.len() - zone_name.len() - 1].to_string() };
        let at_name: Vec<_> = zone.records.iter().filter(|r| r.name.eq_ignore_ascii_case(&relative)).collect();
        if at_name.is_empty() {
            return (if records.is_empty() { ResponseCode::NXDomain } else { ResponseCode::NoError }, records);
        }
        let wanted = at_name.iter().find(|r| r.record_type.eq_ignore_ascii_case(&asked.to_string()));
        let cname = at_name.iter().find(|r| r.record_type.eq_ignore_ascii_case("CNAME"));
        match (wanted, cname) {
            (Some(r), _) => {
                records.extend(r.values.iter().filter_map(|v| rdata(asked, v)).map(|d| (current.clone(), r.ttl, d)));
                return (ResponseCode::NoError, records);
            }
            (None, Some(c)) => {
                let Some(target) = c.values.first().and_then(|v| Name::from_ascii(format!("{v}.")).ok()) else {
                    return (ResponseCode::ServFail, records);
                };
                records.push((current.clone(), c.ttl, RData::CNAME(CNAME(target.clone()))));
                current = target;
            }
            (None, None) => return (ResponseCode::NoError, records),
        }
    }
    (ResponseCode::ServFail, records)
}

fn rdata(kind: RecordType, value: &str) -> Option<RData> {
    match kind {
        RecordType::A => value.parse::<Ipv4Addr>().ok().map(|ip| RData::A(A(ip))),
        RecordType::AAAA => value.parse::<Ipv6Addr>().ok().map(|ip| RData::AAAA(AAAA(ip))),
        RecordType::CNAME => Name::from_ascii(format!("{value}.")).ok().map(|n| RData::CNAME(CNAME(n))),
        _ => None,
    }
}
