//! The coordinator's own small certificate authority, enrolment tokens, and probe identity.
//!
//! - The CA (an ECDSA P-256 key, 10 years) lives in the data directory as `ca.pem` and
//!   `ca.key` (mode 0600). Its SHA-256 fingerprint is what an operator hands to a probe with
//!   its token, so the probe can pin the coordinator before it has any certificate.
//! - A probe certificate carries its identity as one SAN URI,
//!   `urn:meridian:probe:<probe-id>:region:<region-id>`, and the `clientAuth` usage. The
//!   coordinator signs the probe's public key from its CSR but nothing else of the CSR: names,
//!   usages and validity are the coordinator's. A probe's identity and region are read from the
//!   certificate it connects with, never from a payload.
//! - Tokens are 32 random bytes, shown once as `mrd_<hex>`; only their SHA-256 is stored (see
//!   `Store::create_token` / `Store::redeem_token`), so a database leak reveals no usable token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use ring::rand::SecureRandom as _;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// Reading or writing the CA files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Making, parsing or signing a certificate failed.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// The CSR is not a valid PKCS#10 request.
    #[error("certificate request: {0}")]
    BadRequest(String),
    /// A certificate does not carry a Meridian probe identity.
    #[error("not a Meridian probe certificate: {0}")]
    NoIdentity(String),
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

pub use meridian_shared::identity::ProbeIdentity;

/// Reads the identity from a probe certificate (DER). The caller has already verified the
/// certificate chains to the CA (the TLS handshake does that).
pub fn identity_from_cert(der: &[u8]) -> Result<ProbeIdentity, PkiError> {
    ProbeIdentity::from_cert_der(der).map_err(PkiError::NoIdentity)
}

/// The coordinator's certificate authority.
pub struct Ca {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// Loads the CA from `dir`, or creates it there on first use.
    pub fn load_or_create(dir: &Path) -> Result<Ca, PkiError> {
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Io { path, source }
        };
        if cert_path.exists() {
            let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let key = KeyPair::from_pem(&key_pem)?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
            let cert_der = pem_to_der(&cert_pem)?;
            return Ok(Ca {
                cert_der,
                cert_pem,
                issuer,
            });
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, "Meridian coordinator CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key)?;
        write_private(&key_path, key.serialize_pem().as_bytes()).map_err(io(&key_path))?;
        std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
        tracing::info!(path = %cert_path.display(), "created the coordinator CA");
        Ok(Ca {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate (DER), for the TLS client-certificate verifier.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate (PEM), sent to enrolling probes.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A 32-byte secret for `purpose`, derived from the CA's private key: stable across
    /// restarts of this coordinator, unknown to anyone without the key, and different for each
    /// purpose.
    pub fn derived_secret(&self, purpose: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"meridian-derived-secret/");
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(&self.issuer.key().serialize_der());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// SHA-256 of the CA certificate, lower-case hex: what an operator gives a probe to pin.
    pub fn fingerprint(&self) -> String {
        sha256_hex(self.cert_der.as_ref())
    }

    /// Signs a probe certificate for `identity` over the public key in `csr`, valid from an
    /// hour ago (clock skew) for `validity`.
    pub fn sign_probe(
        &self,
        csr: &[u8],
        identity: &ProbeIdentity,
        validity: Duration,
    ) -> Result<CertificateDer<'static>, PkiError> {
        let request = CertificateSigningRequestParams::from_der(
            &CertificateSigningRequestDer::from(csr.to_vec()),
        )
        .map_err(|e| PkiError::BadRequest(e.to_string()))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, identity.probe_id.as_str());
        params.subject_alt_names = vec![SanType::URI(identity.uri().as_str().try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now
            + time::Duration::try_from(validity)
                .map_err(|e| PkiError::BadRequest(e.to_string()))?;
        let cert = params.signed_by(&request.public_key, &self.issuer)?;
        Ok(cert.der().clone())
    }
}

impl Ca {
    /// Issues the coordinator's own TLS server certificate for `names` (DNS names or IP
    /// addresses, as a probe dials them), signed by this CA and valid from an hour ago for
    /// `validity`. Returns the chain to present, leaf first and then the CA certificate (an
    /// enrolling probe pins the CA by its fingerprint, so the CA must travel in the chain),
    /// and the leaf's fresh private key (kept in memory only: reissued at every start).
    pub fn server_cert(
        &self,
        names: &[String],
        validity: Duration,
    ) -> Result<
        (
            Vec<CertificateDer<'static>>,
            rustls_pki_types::PrivateKeyDer<'static>,
        ),
        PkiError,
    > {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Meridian coordinator");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now
            + time::Duration::try_from(validity)
                .map_err(|e| PkiError::BadRequest(e.to_string()))?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        Ok((vec![cert.der().clone(), self.cert_der.clone()], key_der))
    }
}

/// A fresh enrolment token (`mrd_` + 64 hex digits) and the hash to store for it.
pub fn new_token() -> Result<(String, String), PkiError> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    let token = format!("mrd_{}", hex(&bytes));
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.trim().as_bytes())
}

fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::NoIdentity(format!("CA certificate: {e}")))
}

/// Writes a file readable by its owner only, created with that mode (never world-readable,
/// not even for an instant).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ProbeIdentity {
        ProbeIdentity {
            probe_id: "me-south-1a".into(),
            region: meridian_shared::regions::RegionId::parse("me-south").unwrap(),
        }
    }

    fn make_csr() -> (KeyPair, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        // The probe asks for names of its own choosing: the CA must ignore them.
        let params = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        let csr = params.serialize_request(&key).unwrap();
        (key, csr.der().to_vec())
    }

    #[test]
    fn the_ca_is_created_once_with_a_private_key_and_reloaded_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        let fp = ca.fingerprint();
        assert_eq!(fp.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Ca::load_or_create(dir.path()).unwrap();
        assert_eq!(again.fingerprint(), fp);
    }

    #[test]
    fn a_signed_probe_certificate_carries_exactly_the_identity_the_coordinator_chose() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        let (_key, csr) = make_csr();
        let cert = ca
            .sign_probe(&csr, &identity(), Duration::from_secs(86_400 * 90))
            .unwrap();
        assert_eq!(identity_from_cert(cert.as_ref()).unwrap(), identity());
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
        let names = format!(
            "{:?}",
            parsed.subject_alternative_name().unwrap().unwrap().value
        );
        assert!(!names.contains("evil.example"), "{names}");
    }

    #[test]
    fn probe_certificates_chain_to_the_ca_for_a_rustls_client_verifier() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        let (_key, csr) = make_csr();
        let cert = ca
            .sign_probe(&csr, &identity(), Duration::from_secs(3600))
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        let now = rustls_pki_types::UnixTime::now();
        assert!(verifier.verify_client_cert(&cert, &[], now).is_ok());
        // A certificate from another CA is refused.
        let other = tempfile::tempdir().unwrap();
        let stranger = Ca::load_or_create(other.path())
            .unwrap()
            .sign_probe(&make_csr().1, &identity(), Duration::from_secs(3600))
            .unwrap();
        assert!(verifier.verify_client_cert(&stranger, &[], now).is_err());
    }

    #[test]
    fn derived_secrets_are_stable_across_reloads_and_differ_by_purpose_and_ca() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ca::load_or_create(dir.path())
            .unwrap()
            .derived_secret("quic-stateless-reset");
        let again = Ca::load_or_create(dir.path()).unwrap();
        assert_eq!(again.derived_secret("quic-stateless-reset"), a);
        assert_ne!(again.derived_secret("other"), a);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            Ca::load_or_create(other.path())
                .unwrap()
                .derived_secret("quic-stateless-reset"),
            a
        );
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, ha) = new_token().unwrap();
        let (b, hb) = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("mrd_") && a.len() == 68);
        assert_eq!(token_hash(&a), ha);
        assert_ne!(ha, hb);
        assert!(!ha.contains(&a[4..]));
    }
}
