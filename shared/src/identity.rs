//! Who a probe is, as its certificate says: one SAN URI,
//! `urn:meridian:probe:<probe-id>:region:<region-id>`.
//!
//! The coordinator writes it when it signs a probe certificate and reads it from the
//! certificate each probe connects with (never from a payload); the probe reads its own to fill
//! in and cross-check `probe.toml`. Parsing only: chain verification is the TLS handshake's job.

use crate::regions::RegionId;

const URI_PREFIX: &str = "urn:meridian:probe:";

/// A probe's identity as carried by its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeIdentity {
    /// The probe id the coordinator chose at enrolment.
    pub probe_id: String,
    /// The region it was enrolled into.
    pub region: RegionId,
}

impl ProbeIdentity {
    /// The SAN URI that encodes this identity.
    pub fn uri(&self) -> String {
        format!("{URI_PREFIX}{}:region:{}", self.probe_id, self.region)
    }

    /// Parses the SAN URI form; `None` for anything else.
    pub fn from_uri(uri: &str) -> Option<ProbeIdentity> {
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
        Some(ProbeIdentity {
            probe_id: probe_id.to_string(),
            region: RegionId::parse(region).ok()?,
        })
    }

    /// Reads the identity from a certificate (DER); `Err` says, for people, why there is none.
    pub fn from_cert_der(der: &[u8]) -> Result<ProbeIdentity, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the certificate has no subjectAltName".to_string())?;
        let mut found = san.value.general_names.iter().filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) => ProbeIdentity::from_uri(u),
            _ => None,
        });
        match (found.next(), found.next()) {
            (Some(id), None) => Ok(id),
            (None, _) => Err("the certificate carries no urn:meridian:probe URI".to_string()),
            (Some(_), Some(_)) => {
                Err("the certificate carries more than one probe identity".to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_uris_round_trip_and_reject_lookalikes() {
        let id = ProbeIdentity {
            probe_id: "me-south-1a".into(),
            region: RegionId::parse("me-south").unwrap(),
        };
        assert_eq!(ProbeIdentity::from_uri(&id.uri()), Some(id));
        for bad in [
            "urn:meridian:probe::region:me-south",
            "urn:meridian:probe:p 1:region:me-south",
            "urn:meridian:probe:p1:region:ME_SOUTH",
            "urn:meridian:probe:p1",
            "https://example.test/",
        ] {
            assert_eq!(ProbeIdentity::from_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(ProbeIdentity::from_cert_der(b"not a certificate").is_err());
    }
}
