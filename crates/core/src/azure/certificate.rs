//! A service principal's certificate as Entra ID takes it: a client assertion, a JWT signed with
//! the certificate's RSA key ("Microsoft identity platform application authentication certificate
//! credentials"), exchanged by `azure_identity`'s client-assertion credential for a token.
//!
//! `azure_identity` has a certificate credential of its own, but it links OpenSSL (a system
//! library a fresh machine lacks) and reads PKCS#12 only, where the Azure CLI hands out PEM
//! (`az ad sp create-for-rbac --create-cert`). This signs with the crypto library the TLS stack
//! already uses.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use azure_core::http::ClientMethodOptions;
use azure_identity::ClientAssertion;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How long an assertion is valid: the SDKs use a few minutes; it is made anew for every token.
const LIFETIME_SECS: u64 = 300;

pub struct CertificateAssertion {
    key: RsaKeyPair,
    client_id: String,
    /// The token endpoint the assertion is for (`aud`).
    audience: String,
    /// The JWT header: the algorithm and the certificate's thumbprints.
    header: String,
}

impl std::fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAssertion").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl CertificateAssertion {
    /// From a PEM bundle holding the certificate and its RSA private key (PKCS#8 or PKCS#1).
    pub fn from_pem(pem: &[u8], client_id: &str, token_endpoint: &str) -> Result<CertificateAssertion, String> {
        let cert = CertificateDer::pem_slice_iter(pem)
            .next()
            .ok_or("no certificate in it (a PEM `CERTIFICATE` block; a .pfx converts with `openssl pkcs12 -in FILE.pfx -nodes -out FILE.pem`)")?
            .map_err(|e| format!("its certificate is not PEM: {e}"))?;
        let key = match PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no private key in it: {e}"))? {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err("its private key is not RSA (Entra ID signs certificate credentials with RS256)".into()),
        }
        .map_err(|e| format!("its private key is not a usable RSA key: {e}"))?;
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert);
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": B64URL.encode(sha1.as_ref()),
            "x5t#S256": B64URL.encode(sha256.as_ref()),
        });
        Ok(CertificateAssertion {
            key,
            client_id: client_id.to_string(),
            audience: token_endpoint.to_string(),
            header: header.to_string(),
        })
    }

    /// A signed assertion valid from now for `LIFETIME_SECS` (five minutes).
    pub fn sign(&self) -> Result<String, String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|e| e.to_string())?;
        let claims = serde_json::json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": hex::encode(jti),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let signed = format!("{}.{}", B64URL.encode(&self.header), B64URL.encode(claims.to_string()));
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
            .map_err(|e| format!("signing the assertion failed: {e}"))?;
        Ok(format!("{signed}.{}", B64URL.encode(signature)))
    }
}

#[async_trait::async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.sign().map_err(|e| azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    #[test]
    fn the_assertion_is_an_rs256_jwt_for_the_token_endpoint_with_the_certificate_thumbprint() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["drscript".into()]).unwrap().self_signed(&key).unwrap();
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        let endpoint = "https://login.example.test/tenant/oauth2/v2.0/token";
        let assertion = CertificateAssertion::from_pem(pem.as_bytes(), "client-1", endpoint).unwrap();
        let jwt = assertion.sign().unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let json = |s: &str| serde_json::from_slice::<serde_json::Value>(&B64URL.decode(s).unwrap()).unwrap();
        let (header, claims) = (json(parts[0]), json(parts[1]));
        assert_eq!(header["alg"], "RS256");
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.der());
        assert_eq!(header["x5t"], B64URL.encode(sha1.as_ref()));
        assert_eq!(
            (claims["aud"].as_str(), claims["iss"].as_str(), claims["sub"].as_str()),
            (Some(endpoint), Some("client-1"), Some("client-1"))
        );
        assert_eq!(claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(), LIFETIME_SECS);
        assert_ne!(
            claims["jti"],
            json(assertion.sign().unwrap().split('.').nth(1).unwrap())["jti"],
            "a new jti each time"
        );
        // The signature verifies with the certificate's public key.
        let spki =
            x509_parser::parse_x509_certificate(cert.der()).unwrap().1.public_key().subject_public_key.data.to_vec();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &B64URL.decode(parts[2]).unwrap())
            .expect("a valid RS256 signature");

        let e = CertificateAssertion::from_pem(cert.pem().as_bytes(), "c", endpoint).unwrap_err();
        assert!(e.contains("no private key"), "{e}");
        let e = CertificateAssertion::from_pem(key.serialize_pem().as_bytes(), "c", endpoint).unwrap_err();
        assert!(e.contains("no certificate") && e.contains("openssl pkcs12"), "{e}");
    }
}
