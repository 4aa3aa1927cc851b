//! TLS client configuration for HTTPS checks and what is read back from a handshake.
//!
//! rustls with the ring provider chosen explicitly (never the process default, which panics
//! when two providers are compiled in), Mozilla's roots from `webpki-roots` plus any roots the
//! operator adds (`ca_file`, `--cacert`), TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::crypto::ring;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Builds the client configuration used by every HTTPS check of a probe.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        roots.add(cert.clone())?;
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Each check measures a full handshake; resumption would hide the TLS phase.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Reads every certificate of a PEM file (a CA bundle).
pub fn load_pem_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect();
    let certs = certs.map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

/// Human name of a negotiated protocol version, as curl and openssl print it.
pub fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    }
}

/// Whole days from `now_unix` (seconds) until the certificate's notAfter, rounded down;
/// negative once it has expired. `None` when the certificate cannot be parsed.
pub fn cert_days_left(cert: &CertificateDer<'_>, now_unix: i64) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let not_after = parsed.validity().not_after.timestamp();
    Some((not_after - now_unix).div_euclid(86_400))
}
