//! Enrolment over QUIC (ALPN [`ENROLL_ALPN`]): a probe with a one-time token and a CSR gets a
//! certificate naming the probe id the coordinator chose and the token's region.
//!
//! One bidirectional stream, one request and one answer, each a `u32` big-endian length and a
//! named-MessagePack payload (the link's framing, with a [`MAX_ENROLL_FRAME`] limit). The probe
//! connects without a client certificate (it has none yet) and authenticates the coordinator
//! by the CA fingerprint it was given with the token; the coordinator authenticates the probe
//! by the token. The CSR is checked before the token is spent, so a malformed request does not
//! burn it. Refusals say only "invalid token" (or "invalid certificate request"); the precise
//! reason (unknown, expired, used) goes to the coordinator's log.
//!
//! The message types are duplicated in `meridian-probe`'s `enroll` module (the probe must not
//! depend on the coordinator); their field names are the format, and the end-to-end test runs
//! one against the other. Deliberately absent: probe-chosen ids, re-enrolment of a known probe.

use std::sync::Arc;
use std::time::Duration;

use meridian_shared::regions::RegionId;
use meridian_shared::wire::FrameDecoder;
use quinn::Connection;
use ring::rand::SecureRandom as _;
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use super::{Counters, Shared, close, now_ms};
use crate::pki::{self, ProbeIdentity};
use crate::store::TokenRefusal;

/// TLS ALPN protocol id of enrolment.
pub const ENROLL_ALPN: &[u8] = b"meridian-enroll/1";

/// Largest enrolment frame, in bytes: a CSR is a few hundred bytes, a certificate and the CA
/// a few kilobytes.
pub const MAX_ENROLL_FRAME: u32 = 64 * 1024;

/// What an enrolling probe sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time token, as the operator handed it over (`mrd_...`).
    pub token: String,
    /// A PKCS#10 request (DER) over the key pair the probe made; only its public key is used.
    pub csr_der: Vec<u8>,
}

/// The coordinator's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollResponse {
    /// The probe is enrolled.
    Enrolled(Enrolled),
    /// The probe is not enrolled; `message` is deliberately unspecific.
    Refused {
        /// For people.
        message: String,
    },
}

/// A successful enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    /// The id the coordinator gave the probe (also in the certificate).
    pub probe_id: String,
    /// The region of the token (also in the certificate).
    pub region: String,
    /// The probe's certificate (DER).
    pub cert_der: Vec<u8>,
    /// The CA certificate (PEM), for the probe to trust from now on.
    pub ca_pem: String,
}

/// Serves one enrolment connection.
pub(super) async fn serve(shared: Arc<Shared>, conn: Connection) {
    let remote = conn.remote_address();
    let span = tracing::info_span!("enroll", %remote);
    let timeout = shared.config.hello_timeout;
    let result = tokio::time::timeout(timeout, exchange(&shared, &conn))
        .instrument(span)
        .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::info!(%remote, %error, "enrolment connection failed"),
        Err(_) => tracing::info!(%remote, "enrolment timed out"),
    }
    conn.close(close::NORMAL.into(), b"done");
}

/// Why an enrolment exchange failed (before an answer could be sent).
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    /// The stream could not be opened.
    #[error("{0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Reading failed.
    #[error("{0}")]
    Read(#[from] quinn::ReadError),
    /// Writing failed.
    #[error("{0}")]
    Write(#[from] quinn::WriteError),
    /// The request was not one frame of a decodable request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Encoding the answer failed.
    #[error("encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

async fn exchange(shared: &Arc<Shared>, conn: &Connection) -> Result<(), ExchangeError> {
    let (mut tx, mut rx) = conn.accept_bi().await?;
    let mut decoder = FrameDecoder::with_max(MAX_ENROLL_FRAME);
    let mut buf = vec![0u8; 16 * 1024];
    let payload = loop {
        if let Some(p) = decoder
            .next_frame()
            .map_err(|e| ExchangeError::BadRequest(e.to_string()))?
        {
            break p;
        }
        match rx.read(&mut buf).await? {
            Some(n) => decoder
                .push(buf.get(..n).unwrap_or_default())
                .map_err(|e| ExchangeError::BadRequest(e.to_string()))?,
            None => return Err(ExchangeError::BadRequest("stream ended".into())),
        }
    };
    let request: EnrollRequest =
        rmp_serde::from_slice(&payload).map_err(|e| ExchangeError::BadRequest(e.to_string()))?;
    let response = decide(shared, request).await;
    match &response {
        EnrollResponse::Enrolled(e) => {
            Counters::add(&shared.counters.enrolled, 1);
            tracing::info!(probe_id = %e.probe_id, region = %e.region, "probe enrolled");
        }
        EnrollResponse::Refused { .. } => Counters::add(&shared.counters.enroll_refused, 1),
    }
    tx.write_all(&frame(&response)?).await?;
    let _ = tx.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), tx.stopped()).await;
    Ok(())
}

/// Encodes one enrolment frame.
fn frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut out = vec![0u8; 4];
    rmp_serde::encode::write_named(&mut out, msg)?;
    let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

fn refused(message: &str) -> EnrollResponse {
    EnrollResponse::Refused {
        message: message.to_owned(),
    }
}

/// Checks the request, spends the token, signs and records the probe.
async fn decide(shared: &Arc<Shared>, request: EnrollRequest) -> EnrollResponse {
    let csr = rustls_pki_types::CertificateSigningRequestDer::from(request.csr_der.clone());
    if let Err(error) = rcgen::CertificateSigningRequestParams::from_der(&csr) {
        tracing::warn!(%error, "enrolment refused: bad certificate request");
        return refused("invalid certificate request");
    }
    let Some(probe_id) = new_probe_id() else {
        tracing::error!("enrolment failed: the random number generator failed");
        return refused("enrolment failed");
    };
    let hash = pki::token_hash(&request.token);
    let worker = shared.clone();
    let validity = shared.config.probe_cert_validity;
    let outcome = shared
        .store
        .call(move |store| -> Result<EnrollResponse, String> {
            let now = now_ms();
            let region = match store.redeem_token(&hash, &probe_id, now) {
                Ok(Ok(region)) => region,
                Ok(Err(
                    why @ (TokenRefusal::Unknown | TokenRefusal::Expired | TokenRefusal::Used),
                )) => {
                    tracing::warn!(reason = %why, "enrolment refused");
                    return Ok(refused("invalid token"));
                }
                Err(e) => return Err(e.to_string()),
            };
            let region_id = RegionId::parse(&region).map_err(|e| e.to_string())?;
            let identity = ProbeIdentity {
                probe_id: probe_id.clone(),
                region: region_id,
            };
            let cert = worker
                .ca
                .sign_probe(&request.csr_der, &identity, validity)
                .map_err(|e| e.to_string())?;
            let fingerprint =
                hex(ring::digest::digest(&ring::digest::SHA256, cert.as_ref()).as_ref());
            store
                .upsert_probe(&probe_id, &region, Some(&fingerprint), now)
                .map_err(|e| e.to_string())?;
            Ok(EnrollResponse::Enrolled(Enrolled {
                probe_id,
                region,
                cert_der: cert.as_ref().to_vec(),
                ca_pem: worker.ca.cert_pem().to_owned(),
            }))
        })
        .await;
    match outcome {
        Ok(Ok(response)) => {
            if matches!(response, EnrollResponse::Enrolled(_)) {
                // The new probe gets its assignment; its region's others move their slots.
                super::state::refresh_later(shared);
            }
            response
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "enrolment failed");
            refused("enrolment failed")
        }
        Err(error) => {
            tracing::error!(%error, "enrolment failed");
            refused("enrolment failed")
        }
    }
}

/// `probe-` and 8 random hex digits. The token's region is not known until it is redeemed, and
/// redeeming records the id, so the id cannot name the region.
fn new_probe_id() -> Option<String> {
    let mut bytes = [0u8; 4];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(format!("probe-{}", hex(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
