//! The demo's probes: enrolled through the real flow, then described for the rest of the
//! demo (world index, stagger slot, files).
//!
//! Enrolment is what an operator and a probe do on real machines, over QUIC on loopback: the
//! coordinator issues a one-time token for a region (`coordinator token create` does the same
//! store call), and the probe crate's [`enroll`] makes a key pair, sends a CSR with the token,
//! pins the coordinator by its CA fingerprint and writes its certificate, key and CA into its
//! own state directory. The coordinator chose the probe's id; the demo learns it from the
//! answer like any probe.
//!
//! Deliberately absent: results and the link (see `probe`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use meridian_probe::enroll::{self, EnrollError, StateFiles};
use meridian_probe::schedule::Slot;
use tokio::task::JoinSet;

use super::world::{PROBES_PER_REGION, REGIONS};
use crate::pki::{self, PkiError};
use crate::service::{ServiceError, ServiceHandle};
use crate::store::StoreError;

/// How long an enrolment token stays valid.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// One enrolled probe.
#[derive(Debug, Clone)]
pub struct FleetProbe {
    /// The id the coordinator gave it.
    pub id: String,
    /// Its region.
    pub region: &'static str,
    /// Its index in the world's probes (`region/N`, N its rank by id in its region).
    pub index: usize,
    /// Its stagger slot, as the coordinator assigns it (rank by id in its region).
    pub slot: Slot,
    /// Its certificate, key and pinned CA.
    pub files: StateFiles,
    /// Its spool's directory.
    pub spool_dir: PathBuf,
}

/// Why enrolling the fleet failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// Making a token failed.
    #[error("enrolment token: {0}")]
    Token(#[from] PkiError),
    /// Storing a token failed.
    #[error("storing an enrolment token: {0}")]
    Store(#[from] StoreError),
    /// The coordinator's store thread could not be reached.
    #[error("storing an enrolment token: {0}")]
    Service(#[from] ServiceError),
    /// A probe's enrolment failed.
    #[error("enrolling a probe in {region}: {source}")]
    Enroll {
        /// The probe's region.
        region: &'static str,
        /// What enrolment said.
        #[source]
        source: EnrollError,
    },
    /// An enrolment task failed to finish.
    #[error("an enrolment task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Enrols [`PROBES_PER_REGION`] probes in each of [`REGIONS`] with the coordinator behind
/// `service` (CA fingerprint `fingerprint`), each into its own directory under `dir`, all at
/// once. Returns them region by region, by id within a region.
pub async fn enrol(
    service: &ServiceHandle,
    fingerprint: &str,
    dir: &Path,
    now_ms: i64,
) -> Result<Vec<FleetProbe>, FleetError> {
    let addr = service.local_addr();
    let mut tasks = JoinSet::new();
    for (ri, region) in REGIONS.iter().copied().enumerate() {
        for n in 1..=PROBES_PER_REGION {
            let (token, hash) = pki::new_token()?;
            service
                .with_store(move |s| s.create_token(&hash, region, now_ms, now_ms + ttl_ms()))
                .await??;
            let state = dir.join(format!("{region}-{n}"));
            let fingerprint = fingerprint.to_owned();
            tasks.spawn(async move {
                let enrolled = enroll::enroll(addr, "localhost", &token, &fingerprint, &state)
                    .await
                    .map_err(|source| FleetError::Enroll { region, source })?;
                Ok::<_, FleetError>((ri, region, enrolled.probe_id, state))
            });
        }
    }
    let mut enrolled = Vec::new();
    while let Some(done) = tasks.join_next().await {
        enrolled.push(done??);
    }
    enrolled.sort_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));
    let mut fleet = Vec::with_capacity(enrolled.len());
    for (ri, region, id, state) in enrolled {
        let rank = fleet
            .iter()
            .filter(|p: &&FleetProbe| p.region == region)
            .count();
        fleet.push(FleetProbe {
            id,
            region,
            index: ri * PROBES_PER_REGION as usize + rank,
            slot: Slot {
                index: u32::try_from(rank).unwrap_or(u32::MAX),
                count: PROBES_PER_REGION,
            },
            files: StateFiles::in_dir(&state),
            spool_dir: state.join("spool"),
        });
    }
    Ok(fleet)
}

fn ttl_ms() -> i64 {
    i64::try_from(TOKEN_TTL.as_millis()).unwrap_or(i64::MAX)
}
