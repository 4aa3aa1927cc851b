//! `probe run`: the long-running agent. Loads the configuration, runs the scheduler, and
//! appends every result to a JSON-lines file (one [`CheckResult`] per line) with a one-line
//! summary in the log. The durable spool and the uplink to the coordinator replace the file in
//! a later issue; the scheduler and the runner stay as they are.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use meridian_shared::result::CheckResult;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::config::ProbeConfig;
use crate::http::{HttpEnv, tls};
use crate::runner::{Runner, unix_ms};
use crate::schedule::{self, Plan, Stats};

/// The `User-Agent` of every HTTP check that does not set its own.
pub const USER_AGENT: &str = concat!("meridian-probe/", env!("CARGO_PKG_VERSION"));

/// Builds the runner a configuration describes.
pub fn runner_for(config: &ProbeConfig) -> anyhow::Result<Runner> {
    let roots = match &config.ca_file {
        Some(path) => tls::load_pem_certs(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    Ok(Runner {
        probe_id: config.probe_id.clone(),
        region: config.region.to_string(),
        http: HttpEnv {
            policy: config.policy.clone(),
            tls: tls::client_config(&roots).context("building the TLS client configuration")?,
            resolver: config.resolver,
            user_agent: USER_AGENT.to_string(),
        },
    })
}

/// One line summarising a result, for logs and the demo.
pub fn summary(r: &CheckResult) -> String {
    let ms =
        |us: Option<u64>| us.map_or("—".to_string(), |u| format!("{:.1}", u as f64 / 1000.0));
    // Phases that do not apply to a DNS check (Some(0) with no HTTP detail) read as "—".
    let conn = |us: Option<u64>| {
        if r.http.is_none() && us == Some(0) {
            ms(None)
        } else {
            ms(us)
        }
    };
    let status = r
        .http
        .as_ref()
        .and_then(|h| h.status.map(|s| s.to_string()))
        .or_else(|| r.dns.as_ref().map(|d| d.rcode.name()))
        .unwrap_or_else(|| "—".to_string());
    let verdict = match &r.error {
        None => "ok".to_string(),
        Some(e) => format!("FAILED {}: {}", e.class, e.message),
    };
    format!(
        "{:<10} {:>8}  dns {:>6}  connect {:>6}  tls {:>6}  ttfb {:>7}  transfer {:>6}  total {:>7} ms  {verdict}",
        r.check_id.as_str(),
        status,
        ms(r.phases.dns),
        conn(r.phases.connect),
        conn(r.phases.tls),
        conn(r.phases.ttfb),
        conn(r.phases.transfer),
        ms(Some(r.phases.total)),
    )
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = ProbeConfig::load(config_path)?;
    let runner = Arc::new(runner_for(&config)?);
    if let Some(dir) = config.results.parent()
        && !dir.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.results)
        .await
        .with_context(|| format!("opening {}", config.results.display()))?;
    tracing::info!(
        probe_id = %config.probe_id,
        region = %config.region,
        slot = config.slot.index,
        slots = config.slot.count,
        checks = config.checks.len(),
        results = %config.results.display(),
        "probe started"
    );

    let (tx, mut rx) = mpsc::channel::<CheckResult>(1024);
    let stats = Arc::new(Stats::default());
    let scheduler = tokio::spawn({
        let stats = stats.clone();
        async move {
            let plan = Plan {
                checks: config.checks,
                slot: config.slot,
                probe_id: config.probe_id,
                concurrency: config.concurrency,
                wall_now_ms: unix_ms(),
            };
            schedule::run(runner, plan, tx, stats, shutdown_signal()).await;
        }
    });

    while let Some(result) = rx.recv().await {
        let mut line = serde_json::to_vec(&result).context("encoding a result")?;
        line.push(b'\n');
        file.write_all(&line).await.context("writing a result")?;
        file.flush().await.context("writing a result")?;
        tracing::info!(target: "meridian::result", "{}", summary(&result));
    }
    scheduler.await.context("scheduler task")?;
    tracing::info!(
        started = stats.started.load(Ordering::Relaxed),
        missed = stats.missed.load(Ordering::Relaxed),
        "probe stopped"
    );
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
