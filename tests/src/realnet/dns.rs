//! Real DNS servers on a run's hosts: NSD, authoritative for [`ZONE`] on the DNS host, and one
//! Unbound recursive resolver per region on the region's resolver host (`REGION-resolver`,
//! [`super::RealNetBuilder::resolvers`]), each resolving the zone at NSD (a stub zone). The
//! zone names the origin, [`ORIGIN_NAME`]; a region's probes ask their region's resolver, so a
//! resolver in trouble shows up in that region's name resolution and nowhere else.
//!
//! ```no_run
//! # async fn demo(net: &meridian_tests::realnet::RealNet) -> anyhow::Result<()> {
//! use meridian_tests::realnet::{DNS, Rule, dns::DnsServers};
//! let dir = tempfile::tempdir()?;
//! let dns = DnsServers::start(net, net.origin().addr, dir.path()).await?;
//! // The region's resolver loses its upstream: it answers SERVFAIL from now on.
//! net.wan().set_path("eu-central", DNS, Rule::blackhole())?;
//! let answer = dns.query(net, net.probe("eu-central", 0)?, "eu-central").await?;
//! # let _ = answer; dns.stop().await
//! # }
//! ```
//!
//! How [`DnsServers::start`] brings them up: every program looked up first (root without NSD
//! or Unbound is an error that says to install them: CI does); the zone file and the configs
//! written into the caller's (temporary) directory and checked with `nsd-checkzone`, `nsd-checkconf` and
//! `unbound-checkconf`; the servers started in the foreground through `ip netns exec`, each
//! logging to a file there; ready once a real DNS check (`probe check dns:…`) from a probe of
//! each region through its resolver gets the origin's address. Stopped with SIGTERM by
//! [`DnsServers::stop`], killed when dropped (also during a panic), and in any case at
//! teardown with every process of the run's namespaces.
//!
//! # Decisions
//! - NSD and Unbound, Debian's packages: the real servers a deployment runs, not a toy
//!   resolver, so that SERVFAIL, timeouts and caching are the real ones.
//! - TTL 1 s: the resolvers go back to the authoritative about every second, so that a lost
//!   upstream shows in the next checks rather than after a long TTL (production resolvers
//!   serve from cache until the TTL runs out; the test does not wait for that).
//! - Unbound waits at least 300 ms for an upstream answer (`infra-cache-min-rtt`, three times
//!   the slowest region's 100 ms round trip, so that a stall of the loaded test machine is not
//!   a timeout), gives the upstream up once its backed-off timeout reaches 1 s
//!   (`infra-cache-max-rtt`: after 300 + 600 ms of silence) and tries it again after 2 s
//!   (`infra-host-ttl`, probing kept on). So a resolver that loses its upstream answers
//!   SERVFAIL within one check (the probe's first try times out, its retry gets the SERVFAIL),
//!   and finds the upstream again within about one interval of the repair. The retry is
//!   compressed like the check interval: with 8 s (four intervals), a region returning from a
//!   cut kept failing its fresh lookups long enough to page a `dns-resolver` incident that, in
//!   60 s terms, would have lasted four minutes after the region was back.
//! - Probes name their region's resolver in `probe.toml` (`resolver = "udp://…"`), as a
//!   deployment that pins its resolver does; not `resolver = "system"` with an
//!   `/etc/netns/NS/resolv.conf` for `ip netns exec` to mount, which would write outside the
//!   run's directory and, were it missing, fall back to the machine's own resolver.
//! - Nothing recurses: each resolver refuses every name outside [`ZONE`]
//!   (`local-zone: "." refuse`), and the namespaces route nothing but the test range; the
//!   machine's own resolver is never asked.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::Instant;

use super::{ASN_A, Host, RealNet};
use crate::cli::probe_bin;

/// The test zone, under `.test` (RFC 6761: never delegated on the Internet).
pub const ZONE: &str = "meridian.test.";
/// The origin's name in [`ZONE`]: the name the checks use.
pub const ORIGIN_NAME: &str = "origin.meridian.test";
/// The port every server listens on.
pub const PORT: u16 = 53;
/// Every record's TTL, and the negative-caching TTL, seconds (see the decisions).
pub const TTL_SECS: u32 = 1;

/// The packages that hold the programs, for the error when one is missing.
const INSTALL: &str = "apt-get install -y --no-install-recommends nsd unbound";
/// How long the servers may take to answer through every resolver.
const READY_BUDGET: Duration = Duration::from_secs(20);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_BUDGET: Duration = Duration::from_secs(5);

/// A DNS check's outcome as `probe check --json` prints it (the fields read here).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Answer {
    /// Whether the check passed (NOERROR, as a DNS check expects by default).
    pub ok: bool,
    /// The error class when it failed: `dns-rcode` for an answer with another code,
    /// `dns-timeout` for none in time.
    pub error: Option<String>,
    /// The failure in words.
    pub message: Option<String>,
    /// The query's time, ms.
    pub dns_ms: Option<f64>,
    /// The response code (`NOERROR`, `SERVFAIL`, …) when an answer came.
    pub rcode: Option<String>,
    /// The answer records, in presentation form.
    pub answers: Option<Vec<String>>,
}

impl Answer {
    /// Whether the resolver answered with `rcode` (as `dig` spells it).
    pub fn is(&self, rcode: &str) -> bool {
        self.rcode.as_deref() == Some(rcode)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.rcode, &self.error) {
            (Some(rcode), _) => write!(f, "{rcode} {:?}", self.answers.as_deref().unwrap_or(&[])),
            (None, Some(class)) => {
                write!(f, "{class}: {}", self.message.as_deref().unwrap_or(""))
            }
            (None, None) => f.write_str("no answer, no error"),
        }?;
        if let Some(ms) = self.dns_ms {
            write!(f, " in {ms:.1} ms")?;
        }
        Ok(())
    }
}

/// One server process, in its host's namespace.
struct Server {
    /// What it is, for messages: `nsd on dns`, `unbound on eu-central-resolver`.
    what: String,
    /// Its log (stdout and stderr).
    log: PathBuf,
    /// The process (`ip netns exec` execs the server, so this is its pid); killed if dropped.
    child: Option<Child>,
}

impl Server {
    fn start(
        net: &RealNet,
        host: &Host,
        program: &Path,
        args: &[&str],
        log: PathBuf,
    ) -> anyhow::Result<Server> {
        let what = format!(
            "{} on {}",
            program.file_name().unwrap_or_default().to_string_lossy(),
            host.name
        );
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = net
            .command(host, program)
            .args(args)
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        Ok(Server {
            what,
            log,
            child: Some(child),
        })
    }

    /// Fails if the process has exited, with its log.
    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            anyhow::bail!("{} exited ({status}):\n{}", self.what, self.log_text());
        }
        Ok(())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL if it does not exit within [`STOP_BUDGET`].
    async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let pid = Pid::from_raw(i32::try_from(pid)?);
            // Already exited between the check and the signal: the wait below reports it.
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        }
        match tokio::time::timeout(STOP_BUDGET, child.wait()).await {
            Ok(status) => {
                status.with_context(|| format!("waiting for {}", self.what))?;
                Ok(())
            }
            Err(_) => {
                child.kill().await?;
                anyhow::bail!(
                    "{} did not stop within {STOP_BUDGET:?} of SIGTERM",
                    self.what
                )
            }
        }
    }
}

/// A region's resolver as the servers know it.
struct Resolver {
    region: String,
    addr: Ipv4Addr,
    server: Server,
}

/// NSD and the regions' Unbound resolvers, running; killed when dropped.
pub struct DnsServers {
    authoritative: Server,
    resolvers: Vec<Resolver>,
}

impl DnsServers {
    /// Starts NSD on the run's DNS host, serving [`ZONE`] with [`ORIGIN_NAME`] at `origin`,
    /// and an Unbound resolver on every region's resolver host, their files (zone, configs,
    /// logs) in `dir` (made if missing; the caller's temporary directory removes it); waits
    /// until a DNS check from each region through its resolver gets `origin`.
    pub async fn start(net: &RealNet, origin: Ipv4Addr, dir: &Path) -> anyhow::Result<DnsServers> {
        let programs = find_programs(&[
            "nsd",
            "nsd-checkconf",
            "nsd-checkzone",
            "unbound",
            "unbound-checkconf",
        ])?;
        let [
            nsd,
            nsd_checkconf,
            nsd_checkzone,
            unbound,
            unbound_checkconf,
        ] = <[PathBuf; 5]>::try_from(programs)
            .map_err(|p| anyhow::anyhow!("five programs asked, {} found", p.len()))?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir;
        let dns = net.dns();

        let zone_file = path.join("meridian.test.zone");
        std::fs::write(&zone_file, zone(dns.addr, origin))?;
        let nsd_conf = path.join("nsd.conf");
        std::fs::write(&nsd_conf, nsd_conf_text(path, dns.addr))?;
        checked(
            &nsd_checkzone,
            &[ZONE.trim_end_matches('.'), path_str(&zone_file)?],
        )
        .await?;
        checked(&nsd_checkconf, &[path_str(&nsd_conf)?]).await?;

        let mut regions: Vec<String> = Vec::new();
        for b in net.plan().blocks.iter().filter(|b| b.asn == ASN_A) {
            regions.push(b.region.clone());
        }
        let mut confs = Vec::new();
        for region in &regions {
            let host = net.resolver(region).context(
                "the run has no resolver hosts: build it with RealNetBuilder::resolvers",
            )?;
            let conf = path.join(format!("unbound-{region}.conf"));
            std::fs::write(&conf, unbound_conf_text(path, region, host.addr, dns.addr))?;
            checked(&unbound_checkconf, &[path_str(&conf)?]).await?;
            confs.push((region.clone(), host.clone(), conf));
        }

        let authoritative = Server::start(
            net,
            dns,
            &nsd,
            &["-d", "-c", path_str(&nsd_conf)?],
            path.join("nsd.out"),
        )?;
        let mut servers = DnsServers {
            authoritative,
            resolvers: Vec::new(),
        };
        for (region, host, conf) in confs {
            let server = Server::start(
                net,
                &host,
                &unbound,
                &["-d", "-c", path_str(&conf)?],
                path.join(format!("unbound-{region}.log")),
            )?;
            servers.resolvers.push(Resolver {
                region,
                addr: host.addr,
                server,
            });
        }
        servers.wait_ready(net, origin).await?;
        Ok(servers)
    }

    /// Waits until a DNS check from each region's first probe through its resolver gets
    /// `origin` (NSD and every Unbound up, the path between them working).
    async fn wait_ready(&mut self, net: &RealNet, origin: Ipv4Addr) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_BUDGET;
        let regions: Vec<String> = self.resolvers.iter().map(|r| r.region.clone()).collect();
        for region in regions {
            let probe = net
                .probes(&region)
                .first()
                .copied()
                .with_context(|| format!("region {region} has no probe to ask from"))?
                .clone();
            loop {
                self.authoritative.check_running()?;
                for r in &mut self.resolvers {
                    r.server.check_running()?;
                }
                let last = self.query(net, &probe, &region).await?;
                if last.is("NOERROR") && last.answers == Some(vec![origin.to_string()]) {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "the resolver of {region} did not resolve {ORIGIN_NAME} to {origin} within \
                     {READY_BUDGET:?}: last {last}\n{}",
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// The address of `region`'s resolver, as a probe's `resolver` setting names it.
    pub fn resolver(&self, region: &str) -> anyhow::Result<SocketAddr> {
        self.resolvers
            .iter()
            .find(|r| r.region == region)
            .map(|r| SocketAddr::from((r.addr, PORT)))
            .with_context(|| format!("no resolver for region {region:?}"))
    }

    /// A real DNS check of [`ORIGIN_NAME`] (A) from `from` through `region`'s resolver
    /// (`probe check --json --resolver udp://… dns:…`), as a probe reports it.
    pub async fn query(&self, net: &RealNet, from: &Host, region: &str) -> anyhow::Result<Answer> {
        let resolver = format!("udp://{}", self.resolver(region)?);
        let target = format!("dns:{ORIGIN_NAME}");
        let args = [
            "check",
            "--json",
            "--timeout",
            "1s",
            "--resolver",
            &resolver,
            &target,
        ];
        let out = net.exec_in(from, probe_bin()?, &args).await?;
        serde_json::from_str(out.stdout.trim())
            .with_context(|| format!("probe {args:?} in {}: {out:?}", from.name))
    }

    /// The tail of every server's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let servers =
            std::iter::once(&self.authoritative).chain(self.resolvers.iter().map(|r| &r.server));
        for s in servers {
            let text = s.log_text();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "--- {} (tail)\n{}\n",
                s.what,
                lines[lines.len().saturating_sub(10)..].join("\n")
            ));
        }
        out
    }

    /// Stops every server (SIGTERM), reporting what failed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        for r in &mut self.resolvers {
            if let Err(e) = r.server.stop().await {
                errors.push(format!("{e:#}"));
            }
        }
        if let Err(e) = self.authoritative.stop().await {
            errors.push(format!("{e:#}"));
        }
        anyhow::ensure!(
            errors.is_empty(),
            "stopping the DNS servers: {}",
            errors.join("; ")
        );
        Ok(())
    }
}

/// Each program's path, from `PATH` or the sbin directories (where Debian puts servers, and
/// which a non-login shell's `PATH` may lack); an error naming all that are missing.
fn find_programs(names: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            Some(p) => found.push(p),
            None => missing.push(*name),
        }
    }
    anyhow::ensure!(
        missing.is_empty(),
        "the realnet tests run real DNS servers, and {} not installed: `{INSTALL}` \
         (.ci/run does this on CI)",
        if missing.len() == 1 {
            format!("{} is", missing[0])
        } else {
            format!("{} are", missing.join(", "))
        }
    );
    Ok(found)
}

/// Runs a config checker; an error with its output if it does not accept the file.
async fn checked(program: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", program.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} {} refused the file ({}): {}{}",
        program.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a UTF-8 temporary path")
}

/// The zone: SOA, NS (the DNS host), and the origin.
fn zone(ns: Ipv4Addr, origin: Ipv4Addr) -> String {
    format!(
        "$ORIGIN {ZONE}
$TTL {TTL_SECS}
@       IN SOA ns1.{ZONE} hostmaster.{ZONE} 1 3600 600 86400 {TTL_SECS}
@       IN NS  ns1.{ZONE}
ns1     IN A   {ns}
origin  IN A   {origin}
"
    )
}

/// NSD on `addr`, foreground, everything it writes in `dir`.
fn nsd_conf_text(dir: &Path, addr: Ipv4Addr) -> String {
    let d = dir.display();
    format!(
        r#"server:
    ip-address: {addr}
    port: {PORT}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    database: ""
    xfrdfile: "{d}/xfrd.state"
    zonelistfile: "{d}/zone.list"
    xfrdir: "{d}"
    logfile: "{d}/nsd.log"
    server-count: 1
    verbosity: 1
remote-control:
    control-enable: no
zone:
    name: "{zone}"
    zonefile: "meridian.test.zone"
"#,
        zone = ZONE.trim_end_matches('.'),
    )
}

/// Unbound for `region` on `addr`, resolving only [`ZONE`], at NSD on `authoritative`.
fn unbound_conf_text(dir: &Path, region: &str, addr: Ipv4Addr, authoritative: Ipv4Addr) -> String {
    let d = dir.display();
    format!(
        r#"server:
    interface: {addr}@{PORT}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound-{region}.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    msg-cache-size: 1m
    rrset-cache-size: 1m
    do-ip6: no
    access-control: {range} allow
    module-config: "iterator"
    # Only the test zone: every other name is refused, nothing is recursed.
    local-zone: "." refuse
    local-zone: "{ZONE}" transparent
    infra-cache-min-rtt: 300
    infra-cache-max-rtt: 1000
    infra-host-ttl: 2
    infra-keep-probing: yes
stub-zone:
    name: "{ZONE}"
    stub-addr: {authoritative}@{PORT}
remote-control:
    control-enable: no
"#,
        range = super::TEST_RANGE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_names_the_origin_and_its_server() {
        let z = zone(Ipv4Addr::new(198, 18, 2, 10), Ipv4Addr::new(198, 18, 1, 10));
        assert!(z.contains("ns1     IN A   198.18.2.10\n"));
        assert!(z.contains("origin  IN A   198.18.1.10\n"));
        assert!(z.starts_with("$ORIGIN meridian.test.\n$TTL 1\n"));
        assert_eq!(format!("{ORIGIN_NAME}."), format!("origin.{ZONE}"));
    }

    #[test]
    fn a_missing_program_is_named_with_the_command_that_installs_it() {
        let e = find_programs(&["sh", "meridian-no-such-server"]).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("meridian-no-such-server is not installed"),
            "{msg}"
        );
        assert!(msg.contains(INSTALL), "{msg}");
    }
}
