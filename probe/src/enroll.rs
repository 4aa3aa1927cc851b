//! `probe enroll`: obtain this probe's certificate from a coordinator with a one-time token.
//!
//! The key pair is made here and its private half never leaves the machine: it is written
//! `0600` (created with that mode) and only a CSR travels. The coordinator is authenticated
//! before it has any chance to learn the token: the QUIC handshake accepts the server only if
//! its chain carries a CA certificate whose SHA-256 matches the fingerprint the operator
//! passed along with the token, and the server's leaf verifies against that CA for the name
//! dialled. The answer holds the certificate (naming the probe id and region the coordinator
//! chose) and the CA, which the uplink trusts from then on.
//!
//! Wire format (ALPN [`ENROLL_ALPN`], one bidirectional stream): one request frame and one
//! answer frame, each `u32` big-endian length + named MessagePack. The types mirror the
//! coordinator's `service::enroll` ones field for field (this crate cannot depend on it).
//!
//! State directory: `probe.key` (0600), `probe.pem` (the certificate), `ca.pem`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_shared::wire::FrameDecoder;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};

/// TLS ALPN protocol id of enrolment.
pub const ENROLL_ALPN: &[u8] = b"meridian-enroll/1";

/// Largest enrolment frame accepted, in bytes.
const MAX_FRAME: u32 = 64 * 1024;

/// How long the whole enrolment may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the probe sends (mirrors the coordinator's `EnrollRequest`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EnrollRequest {
    /// The one-time token.
    token: String,
    /// PKCS#10 request (DER).
    csr_der: Vec<u8>,
}

/// The coordinator's answer (mirrors its `EnrollResponse`).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum EnrollResponse {
    /// Enrolled.
    Enrolled(EnrolledWire),
    /// Refused, for an unspecific reason.
    Refused {
        /// For people.
        message: String,
    },
}

/// Mirrors the coordinator's `Enrolled`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EnrolledWire {
    probe_id: String,
    region: String,
    cert_der: Vec<u8>,
    ca_pem: String,
}

/// Where an enrolled probe keeps its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFiles {
    /// The probe's certificate (PEM).
    pub cert: PathBuf,
    /// The probe's private key (PEM, 0600).
    pub key: PathBuf,
    /// The coordinators' CA (PEM).
    pub ca: PathBuf,
}

impl StateFiles {
    /// The files in `state_dir`.
    pub fn in_dir(state_dir: &Path) -> StateFiles {
        StateFiles {
            cert: state_dir.join("probe.pem"),
            key: state_dir.join("probe.key"),
            ca: state_dir.join("ca.pem"),
        }
    }
}

/// A completed enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// The id the coordinator gave this probe.
    pub probe_id: String,
    /// Its region.
    pub region: String,
    /// Where the certificate, key and CA were written.
    pub files: StateFiles,
}

/// Why enrolment failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// The fingerprint is not 64 hex digits.
    #[error("the CA fingerprint must be 64 hexadecimal digits (SHA-256)")]
    BadFingerprint,
    /// The state directory already holds a key: this probe is enrolled.
    #[error("{}: already enrolled (remove the state files to enrol again)", .0.display())]
    AlreadyEnrolled(PathBuf),
    /// Reading or writing a state file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Making the key pair or the CSR failed.
    #[error("key pair: {0}")]
    Key(#[from] rcgen::Error),
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The TLS configuration has no cipher suite QUIC can start with.
    #[error("QUIC TLS configuration: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// The coordinator did not present the pinned CA, or its certificate does not verify
    /// against it: it is not the coordinator the operator meant.
    #[error("the coordinator is not trusted: its CA does not match the pinned fingerprint")]
    UntrustedServer,
    /// Connecting or talking to the coordinator failed.
    #[error("connection: {0}")]
    Connection(String),
    /// The coordinator refused (an invalid, used or expired token).
    #[error("enrolment refused: {0}")]
    Refused(String),
    /// The coordinator answered something that is not an enrolment answer.
    #[error("bad answer from the coordinator: {0}")]
    BadResponse(String),
    /// The coordinator did not answer in time.
    #[error("enrolment timed out")]
    Timeout,
}

/// Enrols this probe with the coordinator at `coordinator` (dialled as `server_name`) using
/// `token`, trusting only a coordinator whose CA has the SHA-256 `ca_fingerprint_hex`, and
/// writes the key, certificate and CA into `state_dir` (see [`StateFiles`]).
pub async fn enroll(
    coordinator: SocketAddr,
    server_name: &str,
    token: &str,
    ca_fingerprint_hex: &str,
    state_dir: &Path,
) -> Result<Enrollment, EnrollError> {
    let fingerprint = parse_fingerprint(ca_fingerprint_hex)?;
    let files = StateFiles::in_dir(state_dir);
    if files.key.exists() {
        return Err(EnrollError::AlreadyEnrolled(files.key));
    }
    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
    let request = EnrollRequest {
        token: token.trim().to_owned(),
        csr_der: csr.der().to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCa {
        fingerprint,
        provider: provider.clone(),
        mismatch: AtomicBool::new(false),
    });
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    tls.alpn_protocols = vec![ENROLL_ALPN.to_vec()];
    let client = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls)?,
    ));
    let answer = tokio::time::timeout(
        TIMEOUT,
        exchange(coordinator, server_name, client, &request),
    )
    .await
    .map_err(|_| EnrollError::Timeout)?;
    let answer = match answer {
        Err(EnrollError::Connection(_)) if verifier.mismatch.load(Ordering::Relaxed) => {
            return Err(EnrollError::UntrustedServer);
        }
        other => other?,
    };
    let enrolled = match answer {
        EnrollResponse::Enrolled(e) => e,
        EnrollResponse::Refused { message } => return Err(EnrollError::Refused(message)),
    };
    std::fs::create_dir_all(state_dir).map_err(io_err(state_dir))?;
    write_private(&files.key, key.serialize_pem().as_bytes())?;
    write_file(
        &files.cert,
        pem("CERTIFICATE", &enrolled.cert_der).as_bytes(),
    )?;
    write_file(&files.ca, enrolled.ca_pem.as_bytes())?;
    tracing::info!(probe_id = %enrolled.probe_id, region = %enrolled.region, "enrolled");
    Ok(Enrollment {
        probe_id: enrolled.probe_id,
        region: enrolled.region,
        files,
    })
}

async fn exchange(
    addr: SocketAddr,
    server_name: &str,
    client: quinn::ClientConfig,
    request: &EnrollRequest,
) -> Result<EnrollResponse, EnrollError> {
    let conn_err = |e: &dyn std::fmt::Display| EnrollError::Connection(e.to_string());
    let local: SocketAddr = if addr.ip().is_loopback() {
        if addr.is_ipv4() {
            ([127, 0, 0, 1], 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        }
    } else if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let endpoint = quinn::Endpoint::client(local).map_err(|e| conn_err(&e))?;
    let result = async {
        let conn = endpoint
            .connect_with(client, addr, server_name)
            .map_err(|e| conn_err(&e))?
            .await
            .map_err(|e| conn_err(&e))?;
        let (mut tx, mut rx) = conn.open_bi().await.map_err(|e| conn_err(&e))?;
        let mut frame = vec![0u8; 4];
        rmp_serde::encode::write_named(&mut frame, request)
            .map_err(|e| EnrollError::BadResponse(e.to_string()))?;
        let len = u32::try_from(frame.len() - 4).unwrap_or(u32::MAX);
        frame[..4].copy_from_slice(&len.to_be_bytes());
        tx.write_all(&frame).await.map_err(|e| conn_err(&e))?;
        let _ = tx.finish();
        let mut decoder = FrameDecoder::with_max(MAX_FRAME);
        let mut buf = vec![0u8; 16 * 1024];
        let payload = loop {
            if let Some(p) = decoder
                .next_frame()
                .map_err(|e| EnrollError::BadResponse(e.to_string()))?
            {
                break p;
            }
            match rx.read(&mut buf).await.map_err(|e| conn_err(&e))? {
                Some(n) => decoder
                    .push(buf.get(..n).unwrap_or_default())
                    .map_err(|e| EnrollError::BadResponse(e.to_string()))?,
                None => return Err(EnrollError::BadResponse("no answer".into())),
            }
        };
        let answer = rmp_serde::from_slice::<EnrollResponse>(&payload)
            .map_err(|e| EnrollError::BadResponse(e.to_string()))?;
        conn.close(0u32.into(), b"done");
        Ok(answer)
    }
    .await;
    endpoint.close(0u32.into(), b"done");
    result
}

fn parse_fingerprint(hex: &str) -> Result<[u8; 32], EnrollError> {
    let hex: String = hex.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(EnrollError::BadFingerprint);
    }
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = hex
            .get(2 * i..2 * i + 2)
            .ok_or(EnrollError::BadFingerprint)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| EnrollError::BadFingerprint)?;
    }
    Ok(out)
}

/// Accepts a server only if its chain carries the pinned CA and the leaf verifies against it.
#[derive(Debug)]
struct PinnedCa {
    /// SHA-256 of the pinned CA certificate.
    fingerprint: [u8; 32],
    /// Signature algorithms.
    provider: Arc<CryptoProvider>,
    /// Set when a server presented no matching CA, to report it as such.
    mismatch: AtomicBool,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest =
            |c: &CertificateDer<'_>| ring::digest::digest(&ring::digest::SHA256, c.as_ref());
        let Some(ca) = intermediates
            .iter()
            .find(|c| digest(c).as_ref() == self.fingerprint)
        else {
            self.mismatch.store(true, Ordering::Relaxed);
            return Err(rustls::Error::General(
                "the server did not present the pinned CA".into(),
            ));
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner
            .verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
            .inspect_err(|_| self.mismatch.store(true, Ordering::Relaxed))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EnrollError {
    let path = path.to_path_buf();
    move |source| EnrollError::Io { path, source }
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), EnrollError> {
    std::fs::write(path, contents).map_err(io_err(path))
}

/// Writes the private key, created readable by its owner only (never world-readable, not even
/// for an instant), and synced.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), EnrollError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(contents).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// PEM-encodes one DER block (base64, 64-character lines).
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = (n >> (18 - 6 * i)) & 0x3f;
                b64.push(char::from(ALPHABET[idx as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject as _;

    #[test]
    fn pem_round_trips_through_the_rustls_parser() {
        for len in [0usize, 1, 2, 3, 4, 5, 100, 301] {
            let der: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let text = pem("CERTIFICATE", &der);
            if len == 0 {
                continue;
            }
            let back = CertificateDer::from_pem_slice(text.as_bytes()).unwrap();
            assert_eq!(back.as_ref(), der.as_slice(), "len {len}");
        }
    }

    #[test]
    fn fingerprints_must_be_sha256_hex() {
        let good = "ab".repeat(32);
        assert_eq!(parse_fingerprint(&good).unwrap(), [0xab; 32]);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xab; 32]);
        for bad in ["", "ab", &"zz".repeat(32), &"é".repeat(32)] {
            assert!(matches!(
                parse_fingerprint(bad),
                Err(EnrollError::BadFingerprint)
            ));
        }
    }
}
