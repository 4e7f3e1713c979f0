//! TLS for the database probe: the mode (`disable` … `verify-full`), where it came from, and the
//! rustls client configuration that enforces it.
//!
//! The modes mean what libpq's `sslmode` means, so that a URL copied from an application's
//! settings behaves the same here: `prefer` and `require` encrypt without checking who answers
//! (unless a CA file is given: then `require` checks the chain, as libpq does when a root
//! certificate is present), `verify-ca` checks the chain, `verify-full` the chain and the host
//! name. Without a CA file the chain is checked against the system's trust store, which holds the
//! public roots that Azure's flexible servers chain to.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How the probe protects its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked (its chain is when a CA file is set).
    Require,
    /// TLS, and the certificate chains to a trusted CA; any host name.
    VerifyCa,
    /// TLS, a trusted chain, and a certificate issued for the host the URL names.
    VerifyFull,
}

impl TlsMode {
    /// The values of the `tls` setting.
    pub const SETTINGS: &'static str = "disable, prefer, require, verify-ca, verify-full";
    /// PostgreSQL's `sslmode` values we take (libpq's, but `allow`).
    pub const POSTGRES: &'static str = "disable, prefer, require, verify-ca, verify-full";
    /// MySQL's `ssl-mode` values.
    pub const MYSQL: &'static str = "DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY";

    /// A value of the `tls` setting.
    pub fn parse(text: &str) -> Option<TlsMode> {
        match text {
            "disable" => Some(TlsMode::Disable),
            "prefer" => Some(TlsMode::Prefer),
            "require" => Some(TlsMode::Require),
            "verify-ca" => Some(TlsMode::VerifyCa),
            "verify-full" => Some(TlsMode::VerifyFull),
            _ => None,
        }
    }

    /// A value of MySQL's `ssl-mode` (case-insensitive, as the mysql client takes it).
    pub fn parse_mysql(text: &str) -> Option<TlsMode> {
        match text.to_ascii_uppercase().as_str() {
            "DISABLED" => Some(TlsMode::Disable),
            "PREFERRED" => Some(TlsMode::Prefer),
            "REQUIRED" => Some(TlsMode::Require),
            "VERIFY_CA" => Some(TlsMode::VerifyCa),
            "VERIFY_IDENTITY" => Some(TlsMode::VerifyFull),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// The mode as a URL of `engine` spells it (`sslmode=require`, `ssl-mode=REQUIRED`).
    pub fn url_spelling(self, engine: &str) -> String {
        if engine == "postgres" {
            return format!("sslmode={}", self.as_str());
        }
        let mysql = match self {
            TlsMode::Disable => "DISABLED",
            TlsMode::Prefer => "PREFERRED",
            TlsMode::Require => "REQUIRED",
            TlsMode::VerifyCa => "VERIFY_CA",
            TlsMode::VerifyFull => "VERIFY_IDENTITY",
        };
        format!("ssl-mode={mysql}")
    }

    /// `prefer` on the loopback (a local server, often without a certificate, where nobody can
    /// listen in), `require` everywhere else (Azure's flexible servers refuse plain connections).
    pub fn default_for(host: &str) -> TlsMode {
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback { TlsMode::Prefer } else { TlsMode::Require }
    }
}

/// The TLS a probe uses, and where it was decided (for messages).
#[derive(Debug, Clone)]
pub struct Tls {
    pub mode: TlsMode,
    /// PEM bundle of the CAs to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// `sslmode=disable in the URL`, `tls = "require"`, `the default for a non-loopback host`.
    pub origin: String,
}

impl Tls {
    /// Whether the certificate chain is checked.
    pub fn verifies_chain(&self) -> bool {
        matches!(self.mode, TlsMode::VerifyCa | TlsMode::VerifyFull)
            || (self.mode == TlsMode::Require && self.ca_file.is_some())
    }
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)
    }
}

/// What a certificate check enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

/// rustls's verifier, narrowed to what the mode asks for. Handshake signatures are always
/// checked: even unverified TLS must be a real key exchange with the certificate's key.
#[derive(Debug)]
struct Verifier {
    check: Check,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = self.webpki.as_ref().filter(|_| self.check != Check::Nothing) else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.check == Check::Chain => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The trusted roots as DER: the CA file's certificates, or the system's trust store.
pub fn root_certificates(tls: &Tls) -> Result<Vec<CertificateDer<'static>>, String> {
    match &tls.ca_file {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("ca_file {}: cannot read it: {e}", path.display()))?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ca_file {}: not a PEM bundle: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("ca_file {}: holds no certificate", path.display()));
            }
            Ok(certs)
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                return Err(format!(
                    "{} needs trusted CAs, and the system's trust store is empty: set ca_file",
                    tls.mode.as_str()
                ));
            }
            Ok(found.certs)
        }
    }
}

/// A rustls client configuration enforcing `tls` (never called for `disable`).
pub fn client_config(tls: &Tls) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let check = match tls.mode {
        TlsMode::VerifyFull => Check::ChainAndName,
        _ if tls.verifies_chain() => Check::Chain,
        _ => Check::Nothing,
    };
    let webpki = if check == Check::Nothing {
        None
    } else {
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(root_certificates(tls)?);
        if added == 0 {
            return Err("no usable CA certificate to verify the server with (ca_file)".to_string());
        }
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("cannot build the certificate verifier: {e}"))?,
        )
    };
    let verifier = Verifier { check, webpki, provider: provider.clone() };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot configure TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name the certificate is checked against: an IP address or a DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|e| format!("`{host}` is not a host name TLS can check: {e}"))
}

/// A TLS failure in words an operator can act on (`text` is the driver's message).
pub fn explain(text: &str, tls: &Tls) -> String {
    let ca =
        tls.ca_file.as_ref().map_or("the system's trust store".to_string(), |p| format!("ca_file {}", p.display()));
    // BadSignature: a CA of the same name but another key (a re-issued or look-alike CA).
    let what = if text.contains("UnknownIssuer") || text.contains("unknown issuer") || text.contains("BadSignature") {
        format!("the server's certificate is not signed by a CA in {ca}")
    } else if text.contains("not valid for name") || text.contains("NotValidForName") {
        "the server's certificate is not issued for this host name".to_string()
    } else if text.contains("Expired") || text.contains("expired") {
        "the server's certificate has expired".to_string()
    } else if text.contains("NotValidYet") {
        "the server's certificate is not valid yet (check the clocks)".to_string()
    } else {
        "the TLS handshake failed".to_string()
    };
    format!("{what} ({}): {text}", tls.origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mode_is_require_off_the_loopback() {
        assert_eq!(TlsMode::default_for("mydb.postgres.database.azure.com"), TlsMode::Require);
        assert_eq!(TlsMode::default_for("10.1.2.3"), TlsMode::Require);
        for local in ["127.0.0.1", "localhost", "::1", "127.0.0.2"] {
            assert_eq!(TlsMode::default_for(local), TlsMode::Prefer, "{local}");
        }
    }

    #[test]
    fn mysql_spellings_map_to_the_same_modes() {
        for (mysql, mode) in [
            ("DISABLED", TlsMode::Disable),
            ("preferred", TlsMode::Prefer),
            ("REQUIRED", TlsMode::Require),
            ("VERIFY_CA", TlsMode::VerifyCa),
            ("VERIFY_IDENTITY", TlsMode::VerifyFull),
        ] {
            assert_eq!(TlsMode::parse_mysql(mysql), Some(mode));
            assert_eq!(mode.url_spelling("mysql").to_lowercase(), format!("ssl-mode={}", mysql.to_lowercase()));
        }
        assert_eq!(TlsMode::parse_mysql("verify-full"), None);
        assert_eq!(TlsMode::parse("allow"), None);
    }
}
