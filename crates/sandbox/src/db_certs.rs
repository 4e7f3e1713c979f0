//! A private CA for the sandbox's database servers, as Azure's flexible servers have a public
//! one: `verify-full` against the sandbox then exercises the same checks as against Azure.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use drscript_base::error::{Error, Result};

/// A CA that issues server certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM: what a client's `ca_file` holds.
    pub pem: String,
}

fn failed(what: &str, e: rcgen::Error) -> Error {
    Error::Other(format!("cannot make the {what}: {e}"))
}

impl Ca {
    /// A fresh CA named `common_name` (rcgen's default validity: long enough for any sandbox).
    pub fn new(common_name: &str) -> Result<Ca> {
        let key = KeyPair::generate().map_err(|e| failed("CA key", e))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed("CA", e))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).map_err(|e| failed("CA certificate", e))?.pem();
        Ok(Ca { issuer: Issuer::new(params, key), pem })
    }

    /// A server certificate for `names` (DNS names or IP addresses): (certificate PEM, key PEM).
    pub fn issue(&self, names: &[&str]) -> Result<(String, String)> {
        let key = KeyPair::generate().map_err(|e| failed("server key", e))?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(|e| failed("server certificate", e))?;
        params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| failed("server certificate", e))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}
