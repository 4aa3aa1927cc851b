//! This probe's own identity, read from its enrolment certificate file (see
//! [`meridian_shared::identity`] for the format), to fill in and cross-check `probe.toml`.
//!
//! Deliberately absent: verification. The certificate is the probe's own file; the coordinator
//! verifies it in the TLS handshake.

use std::path::Path;

pub use meridian_shared::identity::ProbeIdentity;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// Reads the identity from the first certificate of a PEM file; `Err` says, for people, why
/// there is none (without the path: the caller names the file as its reader knows it).
pub fn from_pem_file(path: &Path) -> Result<ProbeIdentity, String> {
    let der = CertificateDer::from_pem_file(path).map_err(|e| e.to_string())?;
    ProbeIdentity::from_cert_der(&der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_read_from_a_certificate_file() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            "urn:meridian:probe:p7:region:eu-central"
                .try_into()
                .unwrap(),
        )];
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.pem");
        std::fs::write(&path, cert.pem()).unwrap();
        let id = from_pem_file(&path).unwrap();
        assert_eq!(
            (id.probe_id.as_str(), id.region.as_str()),
            ("p7", "eu-central")
        );
        let plain = rcgen::CertificateParams::new(vec!["x.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(&path, plain.pem()).unwrap();
        assert!(from_pem_file(&path).is_err());
    }
}
