//! Who this probe is, as its enrolment certificate says: the SAN URI
//! `urn:meridian:probe:<probe-id>:region:<region-id>`.
//!
//! The coordinator has the same parser (`coordinator::pki::ProbeIdentity::from_uri`); it is
//! duplicated here, tiny as it is, because the probe cannot depend on the coordinator crate.
//! Keep the two in step (or move both to `meridian_shared` when one of them changes).
//!
//! Deliberately absent: verification. The certificate is the probe's own file, read to fill in
//! and cross-check `probe.toml`; the coordinator verifies it in the TLS handshake.

use std::path::Path;

use meridian_shared::regions::RegionId;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

const URI_PREFIX: &str = "urn:meridian:probe:";

/// A probe's identity as carried by its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The probe id the coordinator chose at enrolment.
    pub probe_id: String,
    /// The region it was enrolled into.
    pub region: RegionId,
}

/// Parses the SAN URI form; `None` for anything else.
pub fn from_uri(uri: &str) -> Option<Identity> {
    let rest = uri.strip_prefix(URI_PREFIX)?;
    let (probe_id, region) = rest.split_once(":region:")?;
    let id_ok = !probe_id.is_empty()
        && probe_id.len() <= 64
        && probe_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !id_ok {
        return None;
    }
    Some(Identity {
        probe_id: probe_id.to_string(),
        region: RegionId::parse(region).ok()?,
    })
}

/// Reads the identity from the first certificate of a PEM file; `Err` says, for people, why
/// there is none (without the path: the caller names the file as its reader knows it).
pub fn from_pem_file(path: &Path) -> Result<Identity, String> {
    let der = CertificateDer::from_pem_file(path).map_err(|e| e.to_string())?;
    from_der(&der)
}

/// Reads the identity from a certificate (DER).
pub fn from_der(der: &[u8]) -> Result<Identity, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the certificate has no subjectAltName".to_string())?;
    let mut found = san.value.general_names.iter().filter_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => from_uri(u),
        _ => None,
    });
    match (found.next(), found.next()) {
        (Some(id), None) => Ok(id),
        (None, _) => Err("the certificate carries no urn:meridian:probe URI".to_string()),
        (Some(_), Some(_)) => Err("the certificate carries more than one probe identity".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_form_round_trips_and_rejects_malformed_ids() {
        let id = from_uri("urn:meridian:probe:p-1.a:region:me-south").unwrap();
        assert_eq!(id.probe_id, "p-1.a");
        assert_eq!(id.region.as_str(), "me-south");
        for bad in [
            "urn:meridian:probe::region:me-south",
            "urn:meridian:probe:p 1:region:me-south",
            "urn:meridian:probe:p1:region:ME_SOUTH",
            "urn:meridian:probe:p1",
            "https://example.test/",
        ] {
            assert!(from_uri(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_identity_is_read_from_a_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            "urn:meridian:probe:p7:region:eu-central"
                .try_into()
                .unwrap(),
        )];
        let cert = params.self_signed(&key).unwrap();
        let id = from_der(cert.der()).unwrap();
        assert_eq!(id.probe_id, "p7");
        assert_eq!(id.region.as_str(), "eu-central");
        let plain = rcgen::CertificateParams::new(vec!["x.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(from_der(plain.der()).is_err());
    }
}
