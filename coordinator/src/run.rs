//! `coordinator run`: the service built from `coordinator.toml`, until SIGINT or SIGTERM.
//!
//! Opens the store in `data_dir`, loads (or creates) the CA, opens the `[geoip]` databases (if
//! any: a bad one fails the start, naming the file; their summary is logged at INFO) whose
//! look-ups give probes their networks, binds the QUIC socket at
//! `listen.quic` and logs "listening on ADDR" at INFO, then runs the [`Service`] with three
//! companions: retention (raw results and rollups pruned by the configured retentions, closed
//! incidents with the rollups, expired web sessions, at
//! start and hourly), reload (SIGHUP, and a poll of the file's modification time: the new
//! targets are put in force and pushed to probes; an invalid file is logged with every
//! `file:line` problem and the old configuration kept), and the signals that stop it all
//! cleanly (connections closed, liveness flushed). Detection runs inside the service (its own
//! thread, see `service::detection`): incidents are logged at INFO and stored for
//! `coordinator incidents`.
//!
//! The web side (`listen.http`, see `meridian_coordinator::web`) runs beside the service and
//! logs "web UI on http://ADDR/" at INFO; it stops with it, requests in flight given 5 s.
//!
//! With `[alerting]` sinks, the alert dispatcher (`meridian_coordinator::alerting`) runs on
//! the same runtime, fed by the detection thread, its counters exported on the web side's
//! `/metrics`; alerts still queued at shutdown are dropped.
//!
//! Settings other than the targets and retentions (addresses, data directory, enrolment, the
//! `[web]` and `[alerting]` tables) need a restart; a reload that changes them says so.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use meridian_coordinator::alerting::{Dispatcher, Links};
use meridian_coordinator::config::CoordinatorConfig;
use meridian_coordinator::pki::Ca;
use meridian_coordinator::service::{Service, ServiceConfig, ServiceHandle};
use meridian_coordinator::store::Store;
use meridian_coordinator::web::Web;
use tokio::signal::unix::{SignalKind, signal};

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// How often the config file's modification time is looked at.
const FILE_POLL: Duration = Duration::from_secs(2);

/// Runs the coordinator until SIGINT, SIGTERM or `stop` resolves.
pub async fn run(path: &Path, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = CoordinatorConfig::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let store = Store::open(&data_dir)?;
    let ca = Ca::load_or_create(&data_dir)?;
    // GeoIpError names the file it could not use.
    let geoip = match &config.geoip {
        Some(files) => {
            let geoip = files.open().context("opening the [geoip] databases")?;
            tracing::info!(databases = %geoip.summary(), "GeoIP loaded");
            Some(Arc::new(geoip))
        }
        None => None,
    };
    let fingerprint = ca.fingerprint();
    let socket = std::net::UdpSocket::bind(config.quic)
        .with_context(|| format!("binding the QUIC socket on {}", config.quic))?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    // Bound before the alerts are set up: their links name the address it got (`listen.http`
    // may ask for port 0).
    let http = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|e| anyhow::anyhow!("binding the web server on {}: {e}", config.http))?;
    let http_addr = http.local_addr().context("the web server's address")?;

    let config = Arc::new(config);
    // Alerting (`[alerting]`): the dispatcher runs on this runtime; the detection thread feeds
    // it through the service. Without sinks, nothing runs.
    let alerting = (!config.alerting.sinks.is_empty()).then(|| {
        let links = Links {
            web: config
                .web
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{http_addr}")),
            runbook: config.alerting.runbook_url.clone(),
        };
        Dispatcher::start(&config.alerting, links)
    });
    let service_config = ServiceConfig {
        server_names: config.server_names.clone(),
        probe_cert_validity: config.cert_validity,
        targets: Some(config.clone()),
        geoip,
        alerts: alerting.as_ref().map(|d| d.sender.clone()),
        ..ServiceConfig::default()
    };
    let service = Service::bind(socket, ca, store, service_config)?;
    let handle = service.handle();
    tracing::info!(
        "listening on {} (QUIC: probe link and enrolment)",
        handle.local_addr()
    );
    tracing::info!(
        data_dir = %data_dir.display(), ca_fingerprint = %fingerprint,
        targets = config.targets.len(), "coordinator started"
    );

    let mut web = Web::with_listener(http, handle.clone(), &data_dir, config.web.clone())?;
    // The dispatcher's counters on `/metrics` (`meridian_alerts_*_total{sink}`).
    if let Some(d) = &alerting {
        web = web.with_alerts(d.counters());
    }
    tracing::info!(
        "web UI on http://{}/ (map, incidents, member messages; public status page at /status)",
        web.local_addr()?
    );
    let (web_stop, web_stopped) = tokio::sync::oneshot::channel::<()>();
    let web = tokio::spawn(web.run(async move {
        let _ = web_stopped.await;
    }));
    let (current, watched) = tokio::sync::watch::channel(config);
    let retention = tokio::spawn(retention(handle.clone(), watched));
    let reload = tokio::spawn(reload(handle.clone(), path.to_owned(), current, hangup));
    service
        .run(async {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
                () = stop => tracing::info!("shutting down"),
            }
        })
        .await;
    retention.abort();
    reload.abort();
    let _ = web_stop.send(());
    if tokio::time::timeout(Duration::from_secs(5), web)
        .await
        .is_err()
    {
        tracing::warn!("web requests still running after 5 s; dropped");
    }
    tracing::info!("coordinator stopped");
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Prunes raw results and rollups by the retentions in force, at start and every hour.
async fn retention(
    handle: ServiceHandle,
    config: tokio::sync::watch::Receiver<Arc<CoordinatorConfig>>,
) {
    let mut every = tokio::time::interval(RETENTION_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let (raw, rollups) = {
            let c = config.borrow();
            (c.raw_retention, c.rollup_retention)
        };
        let now = now_ms();
        let pruned = handle
            .with_store(
                move |s| -> Result<_, meridian_coordinator::store::StoreError> {
                    Ok((
                        s.prune_results(now, raw)?,
                        s.prune_rollups(now, rollups)?,
                        // Kept as long as the rollups that show what happened.
                        s.prune_incidents(now, rollups)?,
                        s.prune_sessions(now)?,
                    ))
                },
            )
            .await;
        match pruned {
            Ok(Ok((results, rollups, incidents, sessions))) => {
                tracing::info!(results, rollups, incidents, sessions, "retention applied");
            }
            Ok(Err(error)) => tracing::error!(%error, "retention failed"),
            Err(error) => tracing::error!(%error, "retention failed"),
        }
    }
}

/// The file's identity for change detection: modification time and length.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reloads the targets on SIGHUP or when the file changes.
async fn reload(
    handle: ServiceHandle,
    path: PathBuf,
    current: tokio::sync::watch::Sender<Arc<CoordinatorConfig>>,
    mut hangup: tokio::signal::unix::Signal,
) {
    let mut seen = stamp(&path);
    let mut poll = tokio::time::interval(FILE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let why = tokio::select! {
            _ = hangup.recv() => "SIGHUP",
            _ = poll.tick() => {
                let now = stamp(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                "file changed"
            }
        };
        let new = match CoordinatorConfig::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(
                    why,
                    "config reload failed; keeping the old configuration:\n{e}"
                );
                continue;
            }
        };
        let old = current.borrow().clone();
        if new.quic != old.quic
            || new.http != old.http
            || new.data_dir != old.data_dir
            || new.server_names != old.server_names
            || new.web != old.web
            || new.alerting != old.alerting
        {
            tracing::warn!(
                why,
                "listen addresses, server names, data_dir, [web] and [alerting] take effect at the next restart"
            );
        }
        let new = Arc::new(new);
        current.send_replace(new.clone());
        match handle.reload(new).await {
            Ok(changed) => tracing::info!(why, changed, "config reloaded"),
            Err(error) => tracing::error!(why, %error, "config reloaded, assignments not updated"),
        }
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
