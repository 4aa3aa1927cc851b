//! The real system on the emulated WAN: the `coordinator` binary in the coordinator's
//! namespace, one `probe run` per probe namespace (enrolled through the real flow: `coordinator
//! token create`, then `probe enroll` over QUIC from inside the probe's namespace), checking a
//! [`ScriptedOrigin`] in the origin's namespace every couple of seconds, across a WAN whose
//! regions sit at different distances ([`SystemBuilder::region`]: a base one-way delay and
//! jitter between the region and everything else). With [`SystemBuilder::edge`], a CDN
//! ([`super::edge`]) fronts a second origin on [`CDN_ORIGIN_PORT`], checked as [`CDN_CHECK`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use meridian_tests::realnet::{Rule, system::System};
//! let Some(mut sys) = System::builder()
//!     .region("eu-central", Duration::from_millis(5))
//!     .region("us-east", Duration::from_millis(20))
//!     .region("me-south", Duration::from_millis(35))
//!     .start_or_skip()
//!     .await?
//! else {
//!     return Ok(()); // not root: the SKIP line is printed
//! };
//! let cut = sys.net().wan().set_path("me-south", "origin", Rule::delay(Duration::from_millis(90)))?;
//! let incident = sys
//!     .wait_incident(Duration::from_secs(60), "the fiber cut", |i| i.class == "regional-network")
//!     .await?;
//! # let _ = (cut, incident); Ok(()) }
//! ```
//!
//! How [`SystemBuilder::start`] brings it up:
//! 1. the network ([`RealNet`], with a resolver host per region), the base delays, the origin,
//!    the GeoIP databases of the plan, the DNS servers ([`super::dns`]: NSD for the origin's
//!    name, which the checks use, and an Unbound resolver per region);
//! 2. `coordinator.toml` (the checks, every probe's region, `[geoip]`), `coordinator run` in
//!    its namespace on [`COORDINATOR_PORT`];
//! 3. every probe enrolled and started with a `probe.toml` naming the coordinator by address,
//!    its region's resolver, and allowing exactly the test range;
//! 4. **calibration**: every probe delivers a few real scheduled runs of every check, over the
//!    emulated WAN;
//! 5. **history** ([`history`](super::history)): probes and coordinator stopped, the
//!    calibration runs replayed into the past as an hour of clean history, written into each
//!    probe's spool and the coordinator's store where an hour of running would have left them
//!    (the seasonal baselines need earlier periods; a 2 s interval makes a period 48 min);
//! 6. the coordinator restarted (its warm start relearns the baselines from that history) and
//!    the probes restarted; ready once every probe delivers again.
//!
//! # Decisions
//! - Base delays sit on the region's `(region → *)` and `(* → region)` links, so that a fault
//!   set on a specific pair (`set_path(region, "origin", …)`, `set_host`) stacks on top of
//!   them and clearing it leaves the base in place. Never [`super::Wan::clear`] a running
//!   system: that removes the base too.
//! - The coordinator listens on a fixed port so that a restarted one (scenario 10) is where
//!   the probes' `probe.toml` says.
//! - Processes run through `ip netns exec`, which execs the program itself: the child's pid is
//!   the coordinator's or the probe's, so SIGTERM and SIGKILL reach it directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use meridian_coordinator::store::Store;
use meridian_coordinator::store::incidents::IncidentRecord;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::Instant;

use super::dns::{DnsServers, ORIGIN_NAME};
use super::edge::Cdn;
pub use super::incidents::{brief, briefs};
use super::origin::ScriptedOrigin;
use super::{Host, RealNet, Rule};
use crate::cli::probe_bin;
use crate::coordinator::{self as coord, coordinator_bin, listening_addr};

/// The coordinator's QUIC port.
pub const COORDINATOR_PORT: u16 = 7443;
/// The origin's HTTPS port.
pub const ORIGIN_PORT: u16 = 443;
/// The port of the origin the CDN's edges forward to (on the origin host, scripted apart from
/// the one the other checks reach directly).
pub const CDN_ORIGIN_PORT: u16 = 8443;
/// The check that goes through the CDN ([`SystemBuilder::edge`]).
pub const CDN_CHECK: &str = "cdn";
/// The name on the coordinator's certificate, which probes verify (never resolved).
pub const COORDINATOR_NAME: &str = "coordinator.meridian.test";
/// The probes' name for the coordinator in `probe.toml`, also their spool cursor's name.
pub const CURSOR: &str = "c1";

/// Set (to anything) to keep the system's directory (logs, data, probes' state) for a look
/// after the run.
pub const KEEP_ENV: &str = "MERIDIAN_REALNET_KEEP";

/// How long `coordinator run` may take to log its address.
const START_BUDGET: Duration = Duration::from_secs(30);
/// How long a process may take to stop after SIGTERM before it is killed.
const STOP_BUDGET: Duration = Duration::from_secs(15);
/// How long every probe may take to deliver its calibration runs, or its first results
/// after a restart.
const DELIVERY_BUDGET: Duration = Duration::from_secs(90);
/// How often stores and incidents are polled.
const POLL: Duration = Duration::from_millis(250);

/// One check of the target: an id and the path it requests on the origin, directly or
/// through the CDN's anycast address.
#[derive(Debug, Clone)]
struct CheckSpec {
    id: String,
    path: String,
    via_cdn: bool,
}

/// How to start a system; [`System::builder`].
#[derive(Debug, Clone)]
pub struct SystemBuilder {
    regions: Vec<(String, Duration)>,
    probes_per_region: usize,
    checks: Vec<CheckSpec>,
    interval: Duration,
    timeout: Duration,
    calibration_runs: usize,
    history: Option<Duration>,
    edges: Vec<(String, Vec<String>)>,
}

impl SystemBuilder {
    /// Adds a region whose probes are `one_way` away from everything else (origin,
    /// coordinator, other regions), with a jitter of 5 % of it.
    pub fn region(mut self, id: &str, one_way: Duration) -> SystemBuilder {
        self.regions.push((id.to_string(), one_way));
        self
    }

    /// Probes per region (default 3: networks A, B, A).
    pub fn probes_per_region(mut self, n: usize) -> SystemBuilder {
        self.probes_per_region = n;
        self
    }

    /// Adds an HTTPS check `id` of `path` on the origin (default: one check `home` of `/`).
    pub fn check(mut self, id: &str, path: &str) -> SystemBuilder {
        self.checks.push(CheckSpec {
            id: id.to_string(),
            path: path.to_string(),
            via_cdn: false,
        });
        self
    }

    /// Adds a CDN edge PoP `name` serving `regions` ([`super::edge`]). With any, the system
    /// runs a second origin on [`CDN_ORIGIN_PORT`] behind the PoPs and one more check,
    /// [`CDN_CHECK`], of `/` on the CDN's anycast address: each probe reaches its region's PoP.
    pub fn edge(mut self, name: &str, regions: &[&str]) -> SystemBuilder {
        self.edges.push((
            name.to_string(),
            regions.iter().map(|r| r.to_string()).collect(),
        ));
        self
    }

    /// The check interval (default 2 s) and timeout (default 1.5 s).
    pub fn interval(mut self, interval: Duration, timeout: Duration) -> SystemBuilder {
        self.interval = interval;
        self.timeout = timeout;
        self
    }

    /// Scheduled runs every probe delivers of every check before the history is written
    /// (default 6): the real measurements the history is made of.
    pub fn calibration_runs(mut self, n: usize) -> SystemBuilder {
        self.calibration_runs = n;
        self
    }

    /// How much history to seed (default: one seasonal period and four slots at the
    /// interval, 56 min at 2 s).
    pub fn history(mut self, history: Duration) -> SystemBuilder {
        self.history = Some(history);
        self
    }

    /// Starts the system, or prints the SKIP line and returns `None` where the real-network
    /// harness cannot run (see [`super::RealNetBuilder::build_or_skip`]).
    pub async fn start_or_skip(self) -> anyhow::Result<Option<System>> {
        let regions: Vec<&str> = self.regions.iter().map(|(r, _)| r.as_str()).collect();
        let mut net = RealNet::builder()
            .regions(&regions)
            .probes_per_region(self.probes_per_region)
            .resolvers();
        for (edge, serves) in &self.edges {
            let serves: Vec<&str> = serves.iter().map(String::as_str).collect();
            net = net.edge(edge, &serves);
        }
        let Some(net) = net.build_or_skip()? else {
            return Ok(None);
        };
        self.start(net).await.map(Some)
    }

    /// Starts the system on `net` (built with this builder's regions and probes).
    pub async fn start(mut self, net: RealNet) -> anyhow::Result<System> {
        if self.checks.is_empty() {
            self = self.check("home", "/");
        }
        let begun = Instant::now();
        for (region, one_way) in &self.regions {
            let base = Rule::delay(*one_way).with_jitter(*one_way / 20);
            net.wan().set_link(region, "*", base)?;
            net.wan().set_link("*", region, base)?;
        }
        let origin = ScriptedOrigin::start(&net, net.origin(), ORIGIN_PORT)?;
        let (cdn_origin, cdn) = if net.plan().edges.is_empty() {
            (None, None)
        } else {
            let behind = ScriptedOrigin::start(&net, net.origin(), CDN_ORIGIN_PORT)?;
            let cdn = Cdn::start(&net, ORIGIN_PORT, &behind)?;
            self.checks.push(CheckSpec {
                id: CDN_CHECK.to_string(),
                path: "/".to_string(),
                via_cdn: true,
            });
            (Some(behind), Some(cdn))
        };
        let dir = tempfile::Builder::new()
            .prefix("meridian-realnet-")
            .tempdir()
            .context("creating the system's directory")?;
        let mut dir = dir;
        if std::env::var_os(KEEP_ENV).is_some() {
            dir.disable_cleanup(true);
            eprintln!(
                "realnet: keeping {} ({KEEP_ENV} is set)",
                dir.path().display()
            );
        }
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir)?;
        let dns = DnsServers::start(&net, net.origin().addr, &dir.path().join("dns")).await?;
        // What the probes trust: the origin's CA, and the CDN's.
        let ca_bundle = dir.path().join("ca-bundle.pem");
        let mut pem = std::fs::read_to_string(origin.ca_file())?;
        if let Some(cdn) = &cdn {
            pem.push_str(&std::fs::read_to_string(cdn.ca_file())?);
        }
        std::fs::write(&ca_bundle, pem)?;
        let countries: Vec<(&str, &str)> = Vec::new();
        let geoip = net.write_geoip(dir.path(), &countries)?;
        let coordinator_addr = SocketAddr::from((net.coordinator().addr, COORDINATOR_PORT));
        let config = dir.path().join("coordinator.toml");
        std::fs::write(
            &config,
            coordinator_toml(
                &self,
                &data_dir,
                coordinator_addr,
                &origin,
                cdn.as_ref(),
                &geoip,
            ),
        )?;
        let mut sys = System {
            origin,
            dns,
            cdn_origin,
            cdn,
            ca_bundle,
            dir,
            data_dir,
            config,
            coordinator: None,
            coordinator_addr,
            probes: Vec::new(),
            checks: self.checks.iter().map(|c| c.id.clone()).collect(),
            interval: self.interval,
            regions: self.regions.clone(),
            timings: Vec::new(),
            net,
        };
        sys.start_coordinator().await?;
        sys.enroll_all().await?;
        sys.timings.push(("enrolled".into(), begun.elapsed()));
        sys.start_probes()?;
        sys.wait_delivered(self.calibration_runs, "calibration runs")
            .await?;
        sys.timings.push(("calibrated".into(), begun.elapsed()));
        sys.stop_probes().await?;
        sys.stop_coordinator().await?;
        let history = self
            .history
            .unwrap_or_else(|| default_history(self.interval));
        let seeded = super::history::seed(&sys, history).await?;
        sys.timings
            .push((format!("seeded {seeded} results"), begun.elapsed()));
        let since = wall_ms();
        sys.start_coordinator().await?;
        sys.start_probes()?;
        sys.wait_fresh(since).await?;
        sys.timings.push(("live".into(), begun.elapsed()));
        Ok(sys)
    }
}

/// One seasonal period and four slots of `interval`'s scale (the demo's choice).
fn default_history(interval: Duration) -> Duration {
    let ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    let p = meridian_coordinator::detect::Params::for_interval(ms);
    let slots = u32::try_from(p.slots_per_period + 4).unwrap_or(u32::MAX);
    Duration::from_millis(p.slot_ms.unsigned_abs()) * slots
}

/// Formats a duration as `coordinator.toml` reads it: whole milliseconds.
fn toml_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn coordinator_toml(
    b: &SystemBuilder,
    data_dir: &Path,
    quic: SocketAddr,
    origin: &ScriptedOrigin,
    cdn: Option<&Cdn>,
    geoip: &super::geoip::GeoIpFiles,
) -> String {
    let regions: Vec<String> = b.regions.iter().map(|(r, _)| format!("{r:?}")).collect();
    let mut text = format!(
        r#"data_dir = "{data_dir}"

[listen]
quic = "{quic}"
server_names = ["{COORDINATOR_NAME}"]

[geoip]
location = "{city}"
asn = "{asn}"

[[target]]
id = "site"
name = "The site behind the test origin"
regions = [{regions}]
"#,
        data_dir = data_dir.display(),
        city = geoip.city.display(),
        asn = geoip.asn.display(),
        regions = regions.join(", "),
    );
    for c in &b.checks {
        let url = match cdn {
            Some(cdn) if c.via_cdn => cdn.url(&c.path),
            // By name, resolved through each probe's regional resolver.
            _ => format!("https://{ORIGIN_NAME}:{}{}", origin.addr().port(), c.path),
        };
        text.push_str(&format!(
            r#"
[[target.http]]
id = "{id}"
url = "{url}"
interval = "{interval}"
timeout = "{timeout}"
expect_status = ["2xx"]
"#,
            id = c.id,
            url = url,
            interval = toml_duration(b.interval),
            timeout = toml_duration(b.timeout),
        ));
    }
    text
}

/// A probe of the system.
#[derive(Debug)]
pub struct SystemProbe {
    /// Its enrolled id.
    pub id: String,
    /// Its host (namespace, address, region, AS).
    pub host: Host,
    /// Its directory: `probe.toml`, `probe.log`, `state/`.
    pub home: PathBuf,
    agent: Option<NsChild>,
}

impl SystemProbe {
    /// Its state directory (certificate, assignment, spool).
    pub fn state_dir(&self) -> PathBuf {
        self.home.join("state")
    }
}

/// A running system; torn down (processes killed, namespaces deleted) when dropped.
pub struct System {
    origin: ScriptedOrigin,
    /// NSD for the origin's name, an Unbound resolver per region.
    dns: DnsServers,
    /// The origin behind the CDN, and the CDN (with edges only).
    cdn_origin: Option<ScriptedOrigin>,
    cdn: Option<Cdn>,
    /// The CAs the probes trust (`ca_file`): the origin's and the CDN's.
    ca_bundle: PathBuf,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    config: PathBuf,
    coordinator: Option<NsChild>,
    coordinator_addr: SocketAddr,
    probes: Vec<SystemProbe>,
    checks: Vec<String>,
    interval: Duration,
    regions: Vec<(String, Duration)>,
    timings: Vec<(String, Duration)>,
    // Last: the processes above are killed before the namespaces go.
    net: RealNet,
}

impl System {
    /// A builder: no region yet, 3 probes per region, checks every 2 s.
    pub fn builder() -> SystemBuilder {
        SystemBuilder {
            regions: Vec::new(),
            probes_per_region: 3,
            checks: Vec::new(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(1_500),
            calibration_runs: 6,
            history: None,
            edges: Vec::new(),
        }
    }

    /// The network: hosts, the WAN emulator.
    pub fn net(&self) -> &RealNet {
        &self.net
    }

    /// The origin every check requests.
    pub fn origin(&self) -> &ScriptedOrigin {
        &self.origin
    }

    /// The DNS servers: the authoritative for the origin's name, the regions' resolvers.
    pub fn dns(&self) -> &DnsServers {
        &self.dns
    }

    /// The CDN in front of the second origin (built with [`SystemBuilder::edge`]).
    pub fn cdn(&self) -> Option<&Cdn> {
        self.cdn.as_ref()
    }

    /// The origin behind the CDN (built with [`SystemBuilder::edge`]).
    pub fn cdn_origin(&self) -> Option<&ScriptedOrigin> {
        self.cdn_origin.as_ref()
    }

    /// The probes, in plan order.
    pub fn probes(&self) -> &[SystemProbe] {
        &self.probes
    }

    /// The probes of `region`.
    pub fn probes_in(&self, region: &str) -> Vec<&SystemProbe> {
        self.probes
            .iter()
            .filter(|p| p.host.site == region)
            .collect()
    }

    /// The regions with their base one-way delays.
    pub fn regions(&self) -> &[(String, Duration)] {
        &self.regions
    }

    /// The check ids.
    pub fn checks(&self) -> &[String] {
        &self.checks
    }

    /// The check interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The coordinator's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How long each step of the start took (cumulative), for the log.
    pub fn timings(&self) -> &[(String, Duration)] {
        &self.timings
    }

    /// Starts `coordinator run` in its namespace (stderr appended to `coordinator.log`) and
    /// waits for its "listening on" line.
    pub async fn start_coordinator(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.coordinator.is_none(), "the coordinator is running");
        let log = self.dir.path().join("coordinator.log");
        let skip = std::fs::metadata(&log).map_or(0, |m| m.len());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .context("opening the coordinator's log")?;
        let child = self
            .net
            .command(self.net.coordinator(), coordinator_bin()?)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .context("starting coordinator run")?;
        let mut child = NsChild { child };
        let deadline = Instant::now() + START_BUDGET;
        loop {
            let text = std::fs::read(&log).unwrap_or_default();
            let fresh = String::from_utf8_lossy(text.get(usize::try_from(skip)?..).unwrap_or(&[]))
                .into_owned();
            if let Some(addr) = listening_addr(&fresh) {
                anyhow::ensure!(
                    addr == self.coordinator_addr,
                    "the coordinator listens on {addr}, not {}",
                    self.coordinator_addr
                );
                self.coordinator = Some(child);
                return Ok(());
            }
            if let Some(status) = child.child.try_wait()? {
                anyhow::bail!("coordinator run exited ({status}) before listening:\n{fresh}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "coordinator run did not log its address within {START_BUDGET:?}:\n{fresh}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the coordinator with SIGTERM; it must exit cleanly.
    pub async fn stop_coordinator(&mut self) -> anyhow::Result<()> {
        let child = self.coordinator.take().context("no coordinator running")?;
        let status = child.terminate(STOP_BUDGET).await?;
        anyhow::ensure!(status.success(), "coordinator run exited with {status}");
        Ok(())
    }

    /// Whether `coordinator run` is running (started, not stopped or killed since).
    pub fn coordinator_running(&self) -> bool {
        self.coordinator.is_some()
    }

    /// `kill -9` of the coordinator: no shutdown, no flush.
    pub async fn kill_coordinator(&mut self) -> anyhow::Result<()> {
        let child = self.coordinator.take().context("no coordinator running")?;
        child.kill().await
    }

    async fn enroll_all(&mut self) -> anyhow::Result<()> {
        let hosts: Vec<Host> = self
            .net
            .hosts()
            .iter()
            .filter(|h| h.asn.is_some())
            .cloned()
            .collect();
        for host in hosts {
            let home = self.dir.path().join(&host.name);
            let state = home.join("state");
            std::fs::create_dir_all(&state)?;
            let token = coord::create_token(&self.data_dir, &host.site).await?;
            let coordinator = self.coordinator_addr.to_string();
            let state_arg = state.to_str().context("a UTF-8 temporary path")?;
            let out = self
                .net
                .exec_in(
                    &host,
                    probe_bin()?,
                    &[
                        "enroll",
                        "--coordinator",
                        &coordinator,
                        "--server-name",
                        COORDINATOR_NAME,
                        "--token",
                        &token.token,
                        "--ca-fingerprint",
                        &token.ca_fingerprint,
                        "--state-dir",
                        state_arg,
                    ],
                )
                .await?;
            anyhow::ensure!(
                out.code == Some(0),
                "probe enroll in {} failed: {out:?}",
                host.name
            );
            let id = out
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix("enrolled as probe "))
                .and_then(|l| l.split_whitespace().next())
                .map(str::to_owned)
                .with_context(|| format!("no probe id in {out:?}"))?;
            std::fs::write(
                home.join("probe.toml"),
                probe_toml(
                    &state,
                    self.dns.resolver(&host.site)?,
                    self.coordinator_addr,
                    &self.ca_bundle,
                ),
            )?;
            self.probes.push(SystemProbe {
                id,
                host,
                home,
                agent: None,
            });
        }
        Ok(())
    }

    /// Starts `probe run` in every probe's namespace that is not running.
    pub fn start_probes(&mut self) -> anyhow::Result<()> {
        for i in 0..self.probes.len() {
            self.start_probe(i)?;
        }
        Ok(())
    }

    /// Starts `probe run` for probe `i` (plan order), stderr appended to its `probe.log`.
    pub fn start_probe(&mut self, i: usize) -> anyhow::Result<()> {
        let p = self.probes.get(i).context("no such probe")?;
        if p.agent.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p.home.join("probe.log"))
            .context("opening a probe's log")?;
        let child = self
            .net
            .command(&p.host, probe_bin()?)
            .arg("run")
            .arg("--config")
            .arg(p.home.join("probe.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting probe run in {}", p.host.name))?;
        self.probes[i].agent = Some(NsChild { child });
        Ok(())
    }

    /// Stops every probe with SIGTERM; each must exit cleanly.
    pub async fn stop_probes(&mut self) -> anyhow::Result<()> {
        for p in &mut self.probes {
            if let Some(agent) = p.agent.take() {
                let status = agent.terminate(STOP_BUDGET).await?;
                anyhow::ensure!(status.success(), "probe {} exited with {status}", p.id);
            }
        }
        Ok(())
    }

    /// Per probe (plan order), its stored scheduled runs of each check: `(check, started_ms)`
    /// of every one, read through a read-only connection.
    pub async fn stored(&self) -> anyhow::Result<Vec<Vec<(String, i64)>>> {
        let dir = self.data_dir.clone();
        let ids: Vec<String> = self.probes.iter().map(|p| p.id.clone()).collect();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let store = Store::open_reader(&dir)?;
            ids.iter()
                .map(|id| {
                    Ok(store
                        .sequenced_results(id)?
                        .into_iter()
                        .filter(|r| r.burst.is_none())
                        .map(|r| (r.result.check_id.to_string(), r.result.started_ms))
                        .collect())
                })
                .collect()
        })
        .await?
    }

    /// Waits until every probe has `runs` scheduled runs of every check stored.
    async fn wait_delivered(&self, runs: usize, what: &str) -> anyhow::Result<()> {
        self.wait_stored(what, |_, stored| {
            self.checks
                .iter()
                .all(|c| stored.iter().filter(|(id, _)| id == c).count() >= runs)
        })
        .await
    }

    /// Waits until every probe has a scheduled run of every check started after `since_ms`
    /// stored.
    async fn wait_fresh(&self, since_ms: i64) -> anyhow::Result<()> {
        self.wait_stored("results after the restart", |_, stored| {
            self.checks
                .iter()
                .all(|c| stored.iter().any(|(id, t)| id == c && *t >= since_ms))
        })
        .await
    }

    async fn wait_stored(
        &self,
        what: &str,
        done: impl Fn(&SystemProbe, &[(String, i64)]) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + DELIVERY_BUDGET;
        loop {
            let stored = self.stored().await?;
            let missing: Vec<&str> = self
                .probes
                .iter()
                .zip(&stored)
                .filter(|(p, s)| !done(p, s))
                .map(|(p, _)| p.host.name.as_str())
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what}: not delivered within {DELIVERY_BUDGET:?} by {missing:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every stored incident (`coordinator incidents --json`).
    pub async fn incidents(&self) -> anyhow::Result<Vec<IncidentRecord>> {
        let dir = self.data_dir.to_str().context("a UTF-8 temporary path")?;
        let out = coord::coordinator(&["incidents", "--data-dir", dir, "--json"]).await?;
        anyhow::ensure!(out.code == Some(0), "coordinator incidents failed: {out:?}");
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).with_context(|| format!("an incident: {l}")))
            .collect()
    }

    /// Waits (at most `budget`) for a stored incident that `pick` accepts.
    pub async fn wait_incident(
        &self,
        budget: Duration,
        what: &str,
        pick: impl Fn(&IncidentRecord) -> bool,
    ) -> anyhow::Result<IncidentRecord> {
        let deadline = Instant::now() + budget;
        loop {
            let incidents = self.incidents().await?;
            if let Some(found) = incidents.iter().find(|i| pick(i)) {
                return Ok(found.clone());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what}: not within {budget:?}; incidents:\n{}\n{}",
                briefs(&incidents),
                self.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits (at most `budget`) until no incident is open; returns them all.
    pub async fn wait_all_closed(&self, budget: Duration) -> anyhow::Result<Vec<IncidentRecord>> {
        let deadline = Instant::now() + budget;
        loop {
            let incidents = self.incidents().await?;
            if incidents.iter().all(|i| !i.state.is_open()) {
                return Ok(incidents);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "incidents still open after {budget:?}:\n{}\n{}",
                briefs(&incidents),
                self.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The coordinator's log so far.
    pub fn coordinator_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("coordinator.log")).unwrap_or_default()
    }

    /// The tail of the coordinator's log, of every probe's and of the DNS servers', for
    /// failure messages.
    pub fn logs(&self) -> String {
        let stats = self.net.wan().stats();
        let mut out = format!(
            "--- WAN: {:?}, unroutable {}, send errors {}, queued {}\n--- coordinator.log (tail)\n{}",
            stats.total,
            stats.unroutable,
            stats.send_errors,
            stats.queued,
            tail(&self.coordinator_log(), 60)
        );
        for p in &self.probes {
            let log = std::fs::read_to_string(p.home.join("probe.log")).unwrap_or_default();
            out.push_str(&format!(
                "\n--- {} ({}) probe.log (tail)\n{}",
                p.host.name,
                p.id,
                tail(&log, 8)
            ));
        }
        out.push('\n');
        out.push_str(&self.dns.logs());
        out
    }

    /// Stops the probes and the coordinator (SIGTERM, clean exits), then tears the network
    /// down, reporting what failed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop_probes().await?;
        if self.coordinator.is_some() {
            self.stop_coordinator().await?;
        }
        let System { net, dir, dns, .. } = self;
        dns.stop().await?;
        net.teardown()?;
        dir.close().context("removing the system's directory")
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn probe_toml(state: &Path, resolver: SocketAddr, coordinator: SocketAddr, ca: &Path) -> String {
    format!(
        r#"state_dir = "{state}"
# The region's own resolver (as a VM's resolv.conf would name the cloud region's), never the
# machine's.
resolver = "udp://{resolver}"
allow_networks = ["{range}"]
ca_file = "{ca}"

[[coordinator]]
name = "{CURSOR}"
address = "{coordinator}"
server_name = "{COORDINATOR_NAME}"
"#,
        state = state.display(),
        range = super::TEST_RANGE,
        ca = ca.display(),
    )
}

/// A process started in a namespace; killed if dropped while running.
#[derive(Debug)]
struct NsChild {
    child: Child,
}

impl NsChild {
    /// Sends SIGTERM and waits up to `budget` for the exit; kills it if it does not stop.
    async fn terminate(mut self, budget: Duration) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().context("the process already exited")?;
        let pid = Pid::from_raw(i32::try_from(pid)?);
        nix::sys::signal::kill(pid, Signal::SIGTERM).context("sending SIGTERM")?;
        match tokio::time::timeout(budget, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.kill().await?;
                anyhow::bail!("the process did not stop within {budget:?} of SIGTERM")
            }
        }
    }

    /// SIGKILL, and waits for it to be gone.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the process")
    }
}

/// Wall clock, Unix ms (what results and incidents carry).
pub fn wall_ms() -> i64 {
    unix_ms(SystemTime::now())
}

/// A wall-clock time as Unix ms.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
