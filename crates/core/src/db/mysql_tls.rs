//! TLS options for `mysql_async`, and the one thing it cannot do itself: `verify-ca`.
//!
//! mysql_async's "skip domain validation" recognises a name mismatch by an error text that
//! rustls no longer produces, so it cannot check a chain while ignoring the name. For `verify-ca`
//! the probe therefore first asks the server for TLS as a MySQL client does (the `SSLRequest`
//! packet), checks the chain with our own verifier, and reads a name the certificate is issued
//! for; the real connection then verifies chain *and* that name in full. Both handshakes must
//! pass, so a certificate not signed by the CA is never accepted.

use std::time::Duration;

use mysql_async::SslOpts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Target;
use super::tls::{self, Tls, TlsMode};

/// The `SslOpts` enforcing `tls` (None for `disable`).
pub async fn ssl_opts(target: &Target, tls: &Tls, timeout: Duration) -> Result<Option<SslOpts>, String> {
    if tls.mode == TlsMode::Disable {
        return Ok(None);
    }
    if !tls.verifies_chain() {
        return Ok(Some(SslOpts::default().with_danger_accept_invalid_certs(true)));
    }
    // DER buffers (the type is not exported by name, only its conversions).
    let roots = tls::root_certificates(tls)?.into_iter().map(|der| der.as_ref().to_vec().into()).collect();
    let mut opts = SslOpts::default().with_root_certs(roots).with_disable_built_in_roots(true);
    if tls.mode != TlsMode::VerifyFull {
        let name = tokio::time::timeout(timeout, certificate_name(target, tls)).await.map_err(|_| {
            format!("no TLS answer from {}:{} within {} s", target.host, target.port, timeout.as_secs())
        })??;
        opts = opts.with_danger_tls_hostname_override(Some(name));
    }
    Ok(Some(opts))
}

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SSL: u32 = 0x800;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;

/// Connects, upgrades to TLS with a chain-only check, and returns the first name (DNS or IP)
/// of the server certificate's subjectAltName.
async fn certificate_name(target: &Target, tls: &Tls) -> Result<String, String> {
    let unreachable = |e: std::io::Error| format!("cannot reach {}:{}: {e}", target.host, target.port);
    let mut tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port)).await.map_err(unreachable)?;
    let mut header = [0u8; 4];
    tcp.read_exact(&mut header).await.map_err(unreachable)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut greeting = vec![0u8; len];
    tcp.read_exact(&mut greeting).await.map_err(unreachable)?;
    if greeting.first() == Some(&0xff) {
        let code = greeting.get(1..3).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        let message = String::from_utf8_lossy(greeting.get(3..).unwrap_or_default());
        return Err(format!("the server refused the connection: {message} (error {code})"));
    }
    // protocol version, server version (NUL-terminated), thread id (4), scramble (8), filler (1),
    // then the lower two bytes of the capabilities.
    let version_end = greeting.iter().skip(1).position(|b| *b == 0).map(|p| p + 1).unwrap_or(greeting.len());
    let caps_at = version_end + 1 + 4 + 8 + 1;
    let capabilities = greeting.get(caps_at..caps_at + 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
    if u32::from(capabilities) & CLIENT_SSL == 0 {
        return Err(format!("the server does not offer TLS ({})", tls.origin));
    }
    let mut request = vec![32, 0, 0, 1];
    request.extend_from_slice(
        &(CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION).to_le_bytes(),
    );
    request.extend_from_slice(&(16u32 << 20).to_le_bytes());
    request.push(45); // utf8mb4_general_ci
    request.extend_from_slice(&[0u8; 23]);
    tcp.write_all(&request).await.map_err(unreachable)?;
    let connector = tokio_rustls::TlsConnector::from(tls::client_config(tls)?);
    let stream =
        connector.connect(tls::server_name(&target.host)?, tcp).await.map_err(|e| tls::explain(&e.to_string(), tls))?;
    let der = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("the server presented no certificate")?
        .clone();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("the server's certificate cannot be read: {e}"))?;
    let names = cert.subject_alternative_name().map_err(|e| format!("the server's certificate: {e}"))?;
    names
        .into_iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
            x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                4 => Some(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                16 => <[u8; 16]>::try_from(*ip).ok().map(|b| std::net::Ipv6Addr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .ok_or_else(|| "the server's certificate names no host (no subjectAltName)".to_string())
}
