//! The regions as pages and the API show them: detection's live view joined with the
//! catalog's names and places, and latencies from the rollups where detection has none.
//!
//! # Decisions
//! - **A region's state is the worst of its targets'** (unreachable over slower than usual
//!   over normal over learning); a region detection cannot judge (too few healthy probes,
//!   silent, cut off from the coordinator) is `unknown`, never a fault: the map must not paint
//!   a monitoring problem as a site outage.
//! - **Latency** is the round trip (TCP connect), the phase a network problem moves and the
//!   server does not: detection's live median over the region's probes and its baseline
//!   (hour-of-day, previous days). Where detection has neither yet (learning), the rollups
//!   give the last five minutes' median and the same hour a day earlier.
//! - **Per-phase detail** (one region, on demand) merges the region's rollups over every
//!   check: p50/p95 of the last five minutes, cached per region and refreshed in the
//!   background after a minute, against the same hour (±30 min) of the previous seven days,
//!   computed for every region at start and at every hour by [`baselines`] (a week of
//!   sketches is too much to read while someone waits).
//! - **Rollup reads use a connection of their own** ([`super::Readers::read_rollups`]): a
//!   region's week of sketches takes tens of milliseconds, and must not delay a session check.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::{AppState, WebError, now_ms};
use crate::config::CoordinatorConfig;
use crate::detect::RegionStatus;
use crate::service::live::LiveView;
use crate::store::rollup::PHASES;

/// How recent "now" is, ms.
const RECENT_MS: i64 = 5 * 60_000;
/// How often the rollup fallbacks of the region list are recomputed, ms.
const LIST_REFRESH_MS: i64 = 30_000;
/// How long a region's per-phase detail is reused, ms.
const DETAIL_REFRESH_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A status's name in the API and CSS.
pub fn status_name(s: RegionStatus) -> &'static str {
    match s {
        RegionStatus::NoData => "no-data",
        RegionStatus::Unknown => "unknown",
        RegionStatus::Warming => "warming",
        RegionStatus::Normal => "normal",
        RegionStatus::Degraded => "degraded",
        RegionStatus::Failing => "unreachable",
    }
}

/// The words for a status.
pub fn status_words(name: &str) -> &'static str {
    match name {
        "normal" => "Normal",
        "degraded" => "Slower than usual",
        "unreachable" => "Unreachable",
        "warming" => "Learning baseline",
        "unknown" => "Unknown",
        _ => "No data",
    }
}

fn rank(s: RegionStatus) -> u8 {
    match s {
        RegionStatus::NoData => 0,
        RegionStatus::Unknown => 1,
        RegionStatus::Warming => 2,
        RegionStatus::Normal => 3,
        RegionStatus::Degraded => 4,
        RegionStatus::Failing => 5,
    }
}

/// One target in one region.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetView {
    /// Check id.
    pub target: String,
    /// The target's name.
    pub name: String,
    /// Its status there.
    pub status: &'static str,
    /// Round trip now and its baseline, ms.
    pub connect_ms: Option<f64>,
    /// Round-trip baseline, ms.
    pub connect_base_ms: Option<f64>,
    /// TLS handshake now, ms.
    pub tls_ms: Option<f64>,
    /// TLS baseline, ms.
    pub tls_base_ms: Option<f64>,
    /// Server time now, ms.
    pub server_ms: Option<f64>,
    /// Server-time baseline, ms.
    pub server_base_ms: Option<f64>,
    /// Probes judged.
    pub probes: usize,
    /// Of those, affected.
    pub affected: usize,
    /// Failed samples among the judged.
    pub failures: usize,
}

/// One region.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RegionView {
    /// Region id.
    pub id: String,
    /// Member-facing name.
    pub name: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Continent, kebab-case.
    pub continent: String,
    /// The worst of its targets' statuses.
    pub status: &'static str,
    /// Probes in the region.
    pub probes: usize,
    /// Of those, neither silent nor quarantined.
    pub probes_healthy: usize,
    /// Round trip now, ms.
    pub latency_ms: Option<f64>,
    /// Its baseline, ms.
    pub baseline_ms: Option<f64>,
    /// Per target.
    pub targets: Vec<TargetView>,
    /// Open site incidents that include the region.
    pub incidents: Vec<u64>,
}

/// The region list's payload.
#[derive(Debug, Clone, Serialize)]
pub struct RegionsView {
    /// When detection computed it, Unix ms.
    pub generated_ms: i64,
    /// Every region of the catalog, in catalog order.
    pub regions: Vec<RegionView>,
}

fn plus(base: Option<f64>, delta: Option<f64>) -> Option<f64> {
    Some(base? + delta?)
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn round1(v: Option<f64>) -> Option<f64> {
    v.map(|x| (x * 10.0).round() / 10.0)
}

/// Every region as of `view`, latencies filled from `fallback` where detection has none.
pub fn regions(
    view: &LiveView,
    config: &CoordinatorConfig,
    fallback: &HashMap<String, Fallback>,
) -> RegionsView {
    let names = crate::drafts::Names::new(&config.catalog, &config.targets);
    let mut by_region: HashMap<&str, Vec<&crate::detect::RegionCell>> = HashMap::new();
    for cell in &view.cells {
        by_region
            .entry(cell.region.as_str())
            .or_default()
            .push(cell);
    }
    let regions = config
        .catalog
        .regions()
        .iter()
        .map(|r| {
            let id = r.id.to_string();
            let cells = by_region.get(id.as_str()).cloned().unwrap_or_default();
            let status = cells
                .iter()
                .map(|c| c.status)
                .max_by_key(|s| rank(*s))
                .unwrap_or(RegionStatus::NoData);
            let targets: Vec<TargetView> = cells
                .iter()
                .map(|c| {
                    let e = c.evidence.as_ref();
                    TargetView {
                        target: c.target.clone(),
                        name: names
                            .services
                            .get(&c.target)
                            .cloned()
                            .unwrap_or_else(|| c.target.clone()),
                        status: status_name(c.status),
                        connect_ms: round1(
                            e.and_then(|e| plus(e.connect_base_ms, e.connect_delta_ms)),
                        ),
                        connect_base_ms: round1(e.and_then(|e| e.connect_base_ms)),
                        tls_ms: round1(e.and_then(|e| plus(e.tls_base_ms, e.tls_delta_ms))),
                        tls_base_ms: round1(e.and_then(|e| e.tls_base_ms)),
                        server_ms: round1(
                            e.and_then(|e| plus(e.server_base_ms, e.server_delta_ms)),
                        ),
                        server_base_ms: round1(e.and_then(|e| e.server_base_ms)),
                        probes: e.map_or(0, |e| e.probes),
                        affected: e.map_or(0, |e| e.affected),
                        failures: e.map_or(0, |e| e.failures),
                    }
                })
                .collect();
            let fb = fallback.get(&id);
            let latency_ms =
                mean(targets.iter().map(|t| t.connect_ms)).or_else(|| fb.and_then(|f| f.recent_ms));
            let baseline_ms = mean(targets.iter().map(|t| t.connect_base_ms))
                .or_else(|| fb.and_then(|f| f.base_ms));
            let incidents = view
                .open
                .iter()
                .filter(|i| !i.operational && i.regions.contains(&id))
                .map(|i| i.id)
                .collect();
            RegionView {
                name: r.name.clone(),
                lat: r.lat,
                lon: r.lon,
                continent: r.continent.to_string(),
                status: status_name(status),
                probes: cells.first().map_or(0, |c| c.probes),
                probes_healthy: cells.first().map_or(0, |c| c.healthy),
                latency_ms: round1(latency_ms),
                baseline_ms: round1(baseline_ms),
                targets,
                incidents,
                id,
            }
        })
        .collect();
    RegionsView {
        generated_ms: view.at_ms,
        regions,
    }
}

/// A region's round trip from the rollups: the last five minutes, and the same hour a day ago.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fallback {
    /// Median of the last five minutes, ms.
    pub recent_ms: Option<f64>,
    /// Median of the same hour (±30 min) a day earlier, ms.
    pub base_ms: Option<f64>,
}

/// One phase of one region.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhaseView {
    /// `dns`, `connect`, `tls`, `ttfb`, `transfer` or `total`.
    pub phase: &'static str,
    /// Median of the last five minutes, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile of the last five minutes, ms.
    pub p95_ms: Option<f64>,
    /// Median of the same hour over the previous seven days, ms.
    pub base_p50_ms: Option<f64>,
    /// 95th percentile of the same, ms.
    pub base_p95_ms: Option<f64>,
    /// Samples in the last five minutes.
    pub count: u64,
}

/// Figures and when they were computed, Unix ms.
type Stamped<T> = (i64, Arc<T>);

/// The rollup-derived figures, cached.
#[derive(Default)]
pub(super) struct LatencyCache {
    list: tokio::sync::Mutex<Option<Stamped<HashMap<String, Fallback>>>>,
    refreshing: std::sync::atomic::AtomicBool,
    detail: tokio::sync::Mutex<HashMap<String, Stamped<Vec<PhaseView>>>>,
    /// Regions whose phases are being refreshed.
    detail_refreshing: tokio::sync::Mutex<std::collections::HashSet<String>>,
    /// Every region's per-phase baseline (same hour, previous seven days), by region then
    /// phase, with the hour it was computed for; kept by [`baselines`].
    baselines: std::sync::RwLock<Option<Stamped<Baselines>>>,
}

/// p50/p95 baselines, by region and phase.
type Baselines = HashMap<String, HashMap<&'static str, (f64, f64)>>;

/// Computes every region's baselines now and then at every hour, on the background lane, so
/// that a region's detail never pays for a week of sketches (about 40 ms a region with ten
/// checks) while someone waits. Runs until `stop` says so.
pub(super) async fn baselines(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let now = now_ms();
        if let Ok(config) = state.config() {
            let checks = check_ids(&config);
            let regions: Vec<String> = config
                .catalog
                .regions()
                .iter()
                .map(|r| r.id.to_string())
                .collect();
            let started = tokio::time::Instant::now();
            let computed = state
                .readers
                .read_background(move |s| {
                    let mut all = Baselines::new();
                    for region in &regions {
                        all.insert(region.clone(), region_baselines(s, &checks, region, now)?);
                    }
                    Ok(all)
                })
                .await;
            match computed {
                Ok(all) => {
                    tracing::debug!(
                        regions = all.len(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "map baselines computed"
                    );
                    *state
                        .latency
                        .baselines
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some((now, Arc::new(all)));
                }
                Err(error) => tracing::warn!(%error, "computing the map's baselines failed"),
            }
        }
        // At the next hour's start, when "the same hour" moves on.
        let wait = HOUR_MS - now.rem_euclid(HOUR_MS) + 1_000;
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(wait.unsigned_abs())) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One region's baselines: each phase's p50/p95 over the same hour (±30 min) of the seven
/// previous days, merged over every check.
fn region_baselines(
    s: &crate::store::Store,
    checks: &[String],
    id: &str,
    now: i64,
) -> Result<HashMap<&'static str, (f64, f64)>, crate::store::StoreError> {
    let mut out = HashMap::new();
    for phase in PHASES {
        let mut base = crate::store::rollup::new_sketch();
        for day in 1..=7 {
            let mid = now - day * DAY_MS;
            for c in checks {
                for (_, sketch) in
                    s.rollup_sketches(c, id, phase, mid - HOUR_MS / 2, mid + HOUR_MS / 2)?
                {
                    let _ = base.merge(&sketch);
                }
            }
        }
        if let Some(b) = crate::store::rollup::summarize(now, &base) {
            out.insert(phase, (ms(b.p50_us), ms(b.p95_us)));
        }
    }
    Ok(out)
}

/// Every check id of the configuration.
fn check_ids(config: &CoordinatorConfig) -> Vec<String> {
    config
        .targets
        .iter()
        .flat_map(|t| t.checks.iter().map(|c| c.id.to_string()))
        .collect()
}

fn ms(us: f64) -> f64 {
    (us / 100.0).round() / 10.0
}

fn compute_fallbacks(
    store: &crate::store::Store,
    checks: &[String],
    regions: &[String],
    now: i64,
) -> Result<HashMap<String, Fallback>, crate::store::StoreError> {
    let mut out = HashMap::new();
    for region in regions {
        let recent = store.rollup_region(
            checks,
            region,
            "connect",
            now - RECENT_MS,
            now + 60_000,
            false,
        )?;
        let day = now - DAY_MS;
        let base = store.rollup_region(
            checks,
            region,
            "connect",
            day - HOUR_MS / 2,
            day + HOUR_MS / 2,
            false,
        )?;
        out.insert(
            region.clone(),
            Fallback {
                recent_ms: recent.first().map(|s| ms(s.p50_us)),
                base_ms: base.first().map(|s| ms(s.p50_us)),
            },
        );
    }
    Ok(out)
}

impl LatencyCache {
    /// The region list's fallbacks: computed on first use, then refreshed in the background
    /// when older than [`LIST_REFRESH_MS`] (requests meanwhile get the previous figures).
    pub(super) async fn fallbacks(
        &self,
        state: &Arc<AppState>,
        config: &CoordinatorConfig,
    ) -> Result<Arc<HashMap<String, Fallback>>, WebError> {
        let now = now_ms();
        let checks = check_ids(config);
        let regions: Vec<String> = config
            .catalog
            .regions()
            .iter()
            .map(|r| r.id.to_string())
            .collect();
        let current = self.list.lock().await.clone();
        match current {
            Some((at, figures)) => {
                if now - at > LIST_REFRESH_MS
                    && !self
                        .refreshing
                        .swap(true, std::sync::atomic::Ordering::AcqRel)
                {
                    let state = state.clone();
                    tokio::spawn(async move {
                        let computed = state
                            .readers
                            .read_rollups(move |s| compute_fallbacks(s, &checks, &regions, now))
                            .await;
                        match computed {
                            Ok(f) => *state.latency.list.lock().await = Some((now, Arc::new(f))),
                            Err(error) => {
                                tracing::warn!(%error, "refreshing the map's latencies failed")
                            }
                        }
                        state
                            .latency
                            .refreshing
                            .store(false, std::sync::atomic::Ordering::Release);
                    });
                }
                Ok(figures)
            }
            None => {
                let figures = Arc::new(
                    state
                        .readers
                        .read_rollups(move |s| compute_fallbacks(s, &checks, &regions, now))
                        .await?,
                );
                *self.list.lock().await = Some((now, figures.clone()));
                Ok(figures)
            }
        }
    }

    /// One region's phases (see the module docs): computed on first use, then served from
    /// the cache and refreshed in the background once older than [`DETAIL_REFRESH_MS`], one
    /// refresh per region at a time.
    pub(super) async fn phases(
        &self,
        state: &Arc<AppState>,
        config: &CoordinatorConfig,
        region: &str,
    ) -> Result<Arc<Vec<PhaseView>>, WebError> {
        let now = now_ms();
        let cached = self.detail.lock().await.get(region).cloned();
        if let Some((at, phases)) = cached {
            if now - at > DETAIL_REFRESH_MS
                && self
                    .detail_refreshing
                    .lock()
                    .await
                    .insert(region.to_owned())
            {
                let (state, checks, id) = (state.clone(), check_ids(config), region.to_owned());
                tokio::spawn(async move {
                    if let Err(error) = state.latency.refresh_phases(&state, checks, &id).await {
                        tracing::warn!(%error, region = %id, "refreshing a region's latencies failed");
                    }
                    state.latency.detail_refreshing.lock().await.remove(&id);
                });
            }
            return Ok(phases);
        }
        self.refresh_phases(state, check_ids(config), region).await
    }

    /// Computes one region's phases on the rollup lane and caches them.
    async fn refresh_phases(
        &self,
        state: &Arc<AppState>,
        checks: Vec<String>,
        region: &str,
    ) -> Result<Arc<Vec<PhaseView>>, WebError> {
        let now = now_ms();
        let id = region.to_owned();
        let base = self
            .baselines
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .and_then(|(_, all)| all.get(region).cloned());
        let phases = state
            .readers
            .read_rollups(move |s| region_phases(s, &checks, &id, now, base.as_ref()))
            .await?;
        let phases = Arc::new(phases);
        let mut detail = self.detail.lock().await;
        if detail.len() > 1_000 {
            detail.clear();
        }
        detail.insert(region.to_owned(), (now, phases.clone()));
        Ok(phases)
    }
}

/// A region's phases over the last five minutes, against `base`.
fn region_phases(
    s: &crate::store::Store,
    checks: &[String],
    id: &str,
    now: i64,
    base: Option<&HashMap<&'static str, (f64, f64)>>,
) -> Result<Vec<PhaseView>, crate::store::StoreError> {
    let mut out = Vec::new();
    for phase in PHASES {
        let recent = s.rollup_region(checks, id, phase, now - RECENT_MS, now + 60_000, false)?;
        let b = base.and_then(|b| b.get(phase)).copied();
        let r = recent.first();
        if r.is_none() && b.is_none() {
            continue;
        }
        out.push(PhaseView {
            phase,
            p50_ms: r.map(|s| ms(s.p50_us)),
            p95_ms: r.map(|s| ms(s.p95_us)),
            base_p50_ms: b.map(|b| b.0),
            base_p95_ms: b.map(|b| b.1),
            count: r.map_or(0, |s| s.count),
        });
    }
    Ok(out)
}
