//! JSON Web Tokens as the Entra emulator and the services behind it use them (RFC 7515/7519):
//! compact serialisation, RS256 signing with the sandbox's RSA keys, and verification of RS256
//! and PS256 signatures with the emulator's own code (the public key checks the signature through
//! rustls' aws-lc-rs verifiers, never through a client library).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{KeyPair, PKCS_RSA_SHA256, SigningKey};
use rustls::SignatureScheme;
use serde_json::Value;

use drscript_base::error::{Error, Result};

/// base64url without padding, as JWTs carry their parts.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url, tolerating trailing padding (some writers keep it).
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// Decodes a thumbprint as either base64url or standard base64 (Azure's Rust client sends the
/// latter in `x5t`).
pub fn thumbprint_decode(text: &str) -> Option<Vec<u8>> {
    b64url_decode(text).or_else(|| STANDARD.decode(text).ok())
}

/// A fresh RSA 2048 key that signs RS256.
pub fn rsa_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(|e| Error::Other(format!("sandbox Entra ID: RSA key: {e}")))
}

/// `header.claims.signature`, signed RS256 by `key`.
pub fn sign(key: &KeyPair, header: &Value, claims: &Value) -> Result<String> {
    let signed = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let signature =
        key.sign(signed.as_bytes()).map_err(|e| Error::Other(format!("sandbox Entra ID: cannot sign a token: {e}")))?;
    Ok(format!("{signed}.{}", b64url(&signature)))
}

/// A token split into its parts; nothing verified yet.
#[derive(Debug)]
pub struct Parsed {
    pub header: Value,
    pub claims: Value,
    /// `header.claims` as received: what the signature covers.
    signed: String,
    signature: Vec<u8>,
}

/// Splits a compact JWS; `None` when it is not three base64url parts with JSON objects.
pub fn parse(token: &str) -> Option<Parsed> {
    let mut parts = token.trim().split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&b64url_decode(h)?).ok()?;
    let claims: Value = serde_json::from_slice(&b64url_decode(c)?).ok()?;
    if !header.is_object() || !claims.is_object() {
        return None;
    }
    Some(Parsed { header, claims, signed: format!("{h}.{c}"), signature: b64url_decode(s)? })
}

impl Parsed {
    /// Whether the signature is valid for `public_key` (an RSA public key as PKCS#1
    /// `RSAPublicKey` DER) under the header's `alg` (RS256 or PS256; anything else is refused).
    pub fn verify(&self, public_key: &[u8]) -> bool {
        let scheme = match self.header["alg"].as_str() {
            Some("RS256") => SignatureScheme::RSA_PKCS1_SHA256,
            Some("PS256") => SignatureScheme::RSA_PSS_SHA256,
            _ => return false,
        };
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .filter(|(s, _)| *s == scheme)
            .flat_map(|(_, algs)| algs.iter())
            .any(|alg| alg.verify_signature(public_key, self.signed.as_bytes(), &self.signature).is_ok())
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims[name].as_str()
    }

    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims[name].as_i64().or_else(|| self.claims[name].as_f64().map(|f| f as i64))
    }

    /// `aud` as a list (a string or an array of strings).
    pub fn audiences(&self) -> Vec<&str> {
        match &self.claims["aud"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let key = rsa_key().unwrap();
        let other = rsa_key().unwrap();
        let token = sign(&key, &json!({"alg": "RS256", "typ": "JWT"}), &json!({"aud": "x", "exp": 1})).unwrap();
        let parsed = parse(&token).unwrap();
        assert!(parsed.verify(key.public_key_raw()));
        assert!(!parsed.verify(other.public_key_raw()));
        assert_eq!(parsed.audiences(), vec!["x"]);
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64url(json!({"aud": "y", "exp": 1}).to_string().as_bytes());
        parts[1] = &forged;
        assert!(!parse(&parts.join(".")).unwrap().verify(key.public_key_raw()));
        let none = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(b"{}"));
        assert!(!parse(&none).unwrap().verify(key.public_key_raw()));
    }
}
