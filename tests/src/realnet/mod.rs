//! The real-network harness: network namespaces for regions' probes, origins, DNS and the
//! coordinator, joined by a userspace WAN emulator on TUN devices that delays, jitters, drops
//! and blackholes packets per region and per host while the test runs. Root only; without root
//! every test that uses it prints one `SKIP realnet: …` line and passes.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use meridian_probe::demo::origin::TlsVersions;
//! use meridian_tests::{cli::probe_bin, realnet::{RealNet, Rule, origin::NsOrigin}};
//! let Some(net) = RealNet::builder()
//!     .regions(&["eu-central", "us-east"])
//!     .probes_per_region(3)
//!     .build_or_skip()?
//! else {
//!     return Ok(()); // not root: the SKIP line is printed
//! };
//! let origin = NsOrigin::start(&net, net.origin(), Some(TlsVersions::Both))?;
//! let fiber_cut = Rule::delay(Duration::from_millis(90));
//! let injected = net.wan().set_path("eu-central", "origin", fiber_cut)?; // TTD starts here
//! let ca = origin.ca_file().unwrap().to_str().unwrap();
//! let url = origin.url("/");
//! let args = ["check", "--json", "--allow-private", "--cacert", ca, url.as_str()];
//! let out = net.exec_in(net.probe("eu-central", 0)?, probe_bin()?, &args).await?;
//! net.teardown()?; // or just drop it, also during a panic
//! # let _ = (injected, out); Ok(()) }
//! ```
//!
//! What lives where:
//! - [`plan`]: the address plan (one documented range, [`TEST_RANGE`]; two AS blocks per
//!   region) and its checks. Pure.
//! - [`rules`]: what a [`Rule`] does and how rules stack. Pure.
//! - [`wan`]: the emulator thread and its handle, [`Wan`]: rules, counters, injection log.
//! - `route`: the root namespace's blackhole route for the range, shared by concurrent runs.
//! - `ns`: namespaces by name (`ip netns`), threads that enter them.
//! - [`edge`]: CDN edge PoPs, TLS reverse proxies in front of an origin, reached by anycast,
//!   each scriptable on its own.
//! - [`dns`]: real DNS servers on the run's hosts: NSD authoritative for [`dns::ZONE`] on the
//!   DNS host, an Unbound resolver per region on its resolver host, started and validated by
//!   the harness, killed at teardown.
//! - [`origin`]: the probe's scriptable HTTPS origin served inside a namespace, and
//!   [`origin::ScriptedOrigin`], whose every answer the test scripts at run time.
//! - [`geoip`]: City and ASN databases for the plan's blocks, for the coordinator.
//! - [`system`]: the real system on the WAN: `coordinator run` and one `probe run` per probe,
//!   each in its namespace, enrolled through the real flow, with incidents read back.
//! - [`history`]: the clean history its seasonal baselines start from, made of real runs.
//! - [`audit`]: every result a probe spooled stored by the coordinator exactly once.
//! - [`scenarios`]: the fault scenarios over a running system, each asserting its incident and
//!   returning its figures; run by the `realnet` test and by `bench-realnet`.
//! - [`incidents`]: stored incidents in a few lines each, for logs and failure messages.
//!
//! How a run is built ([`RealNetBuilder::build`]): the blackhole route for the whole range in
//! the root namespace first, so that no packet for a test address can leave the machine; then
//! per host a namespace, a TUN device `wan0` opened from a thread inside it (the device stays
//! in that namespace), the host's address on it with the range's prefix (so the range, and
//! nothing else, is routed through the device), and `lo` up; then the emulator takes every
//! device. A namespace has no other interface and no default route: whatever runs inside can
//! reach the run's own hosts through the emulator and nothing else.
//!
//! Teardown (drop, also while a test panics, or [`RealNet::teardown`] for its errors): the
//! emulator stops and closes the devices, every process left inside a namespace is killed, the
//! namespaces are deleted, the route is released (deleted with its last holder). Namespaces of
//! a process killed before its teardown are removed by the next run.
//!
//! # Decisions
//! - One namespace per host, a region being the group of its probes' hosts: see [`plan`].
//! - Code runs inside a namespace in two ways: child processes through `ip netns exec`
//!   ([`RealNet::command`], [`RealNet::exec_in`], [`RealNet::spawn_in`]), and in-process
//!   servers whose sockets are created on a thread that entered the namespace
//!   ([`RealNet::run_in`], [`RealNet::tcp_listener`], [`RealNet::udp_socket`]), then served on
//!   the test's runtime: a socket keeps its namespace.
//! - The harness itself never sends a packet: the root namespace only runs `ip`.
//! - Skipping: not root, or root without the right to make namespaces or routes (an
//!   unprivileged container), or no `/dev/net/tun`: the one line names what was skipped and
//!   why, once per test process. Any other failure fails the test.

pub mod audit;
pub mod dns;
pub mod edge;
pub mod geoip;
pub mod history;
pub mod incidents;
pub mod origin;
pub mod plan;
pub mod rules;
pub mod scenarios;
pub mod system;
pub mod wan;

mod ns;
mod route;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context as _;
use tokio::process::Command;

use crate::cli::{CHILD_BUDGET, Output};
pub use plan::{ASN_A, ASN_B, Block, COORDINATOR, DNS, EDGE_ANYCAST, ORIGIN, Plan, TEST_RANGE};
pub use route::{RouteStatus, status as route_status};
pub use rules::Rule;
pub use wan::{Counts, Injection, Wan, WanStats};

/// Name of the TUN device in every namespace.
pub const DEVICE: &str = "wan0";

/// Runs started by this process, for unique namespace names.
static RUNS: AtomicU32 = AtomicU32::new(0);

/// One host of a run: a namespace with one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Unique in the run: `eu-central-p0`, `origin`, `dns`, `coordinator`.
    pub name: String,
    /// Its site: a region id, [`ORIGIN`], [`DNS`] or [`COORDINATOR`].
    pub site: String,
    /// Its namespace, for `ip netns exec`.
    pub ns: String,
    /// Its address.
    pub addr: Ipv4Addr,
    /// The AS of its address block (probes only).
    pub asn: Option<u32>,
}

/// How to build a run; [`RealNet::builder`].
#[derive(Debug, Clone)]
pub struct RealNetBuilder {
    regions: Vec<String>,
    probes_per_region: usize,
    origins: usize,
    edges: Vec<plan::EdgeSpec>,
    resolvers: bool,
    seed: u64,
}

/// Why the harness cannot run here (printed as the SKIP line).
#[derive(Debug)]
struct Unavailable(String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

impl RealNetBuilder {
    /// The regions, in order (their address blocks follow this order).
    pub fn regions(mut self, regions: &[&str]) -> RealNetBuilder {
        self.regions = regions.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Probes in each region (default 3: two in network A, one in network B).
    pub fn probes_per_region(mut self, n: usize) -> RealNetBuilder {
        self.probes_per_region = n;
        self
    }

    /// Origin hosts (default 1).
    pub fn origins(mut self, n: usize) -> RealNetBuilder {
        self.origins = n;
        self
    }

    /// Adds a CDN edge PoP `name` (a host and a site of its own, see [`plan::Plan::with_edges`])
    /// that receives the traffic of `serves` for the anycast address [`EDGE_ANYCAST`].
    pub fn edge(mut self, name: &str, serves: &[&str]) -> RealNetBuilder {
        self.edges.push(plan::EdgeSpec {
            name: name.to_string(),
            serves: serves.iter().map(|r| r.to_string()).collect(),
        });
        self
    }

    /// Adds a recursive resolver's host to every region (`REGION-resolver`, see
    /// [`Plan::with_resolvers`]); [`dns`] runs the servers on it.
    pub fn resolvers(mut self) -> RealNetBuilder {
        self.resolvers = true;
        self
    }

    /// The seed of the emulator's loss and jitter draws (default fixed).
    pub fn seed(mut self, seed: u64) -> RealNetBuilder {
        self.seed = seed;
        self
    }

    /// Builds the run; fails if the harness cannot run here (see [`Self::build_or_skip`]).
    pub fn build(self) -> anyhow::Result<RealNet> {
        if let Some(reason) = unavailable() {
            return Err(Unavailable(reason).into());
        }
        let mut plan = Plan::new(&self.regions, self.probes_per_region, self.origins)?
            .with_edges(&self.edges)?;
        if self.resolvers {
            plan = plan.with_resolvers();
        }
        let run = RUNS.fetch_add(1, Ordering::SeqCst);
        ns::sweep_stale();
        let mut teardown = Teardown {
            namespaces: Vec::new(),
            route: None,
        };
        teardown.route = Some(RouteHold::acquire(run).map_err(not_permitted)?);

        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        let mut routes = HashMap::new();
        let mut anycast: wan::Anycast = HashMap::new();
        for spec in &plan.hosts {
            let name = format!("{}{}-{run}-{}", ns::PREFIX, std::process::id(), spec.name);
            match ns::add(&name) {
                Ok(()) => teardown.namespaces.push(name.clone()),
                Err(ns::AddError::NotPermitted(e)) => return Err(Unavailable(e).into()),
                Err(ns::AddError::Failed(e)) => return Err(e),
            }
            let dev = ns::in_thread(&name, || {
                tun_rs::DeviceBuilder::new().name(DEVICE).build_sync()
            })?
            .with_context(|| format!("opening a TUN device in {name}"))?;
            let mut commands = vec![
                "link set lo up".to_string(),
                format!(
                    "addr add {}/{} dev {DEVICE}",
                    spec.addr,
                    TEST_RANGE.prefix_len()
                ),
            ];
            let edge = plan.edges.iter().find(|e| e.name == spec.name);
            if edge.is_some() {
                // A /32 after the host's own /15: the PoP answers on the anycast address, and
                // its own connections (to the origin) leave from its unicast one.
                commands.push(format!("addr add {EDGE_ANYCAST}/32 dev {DEVICE}"));
            }
            commands.push(format!("link set {DEVICE} up"));
            ns::ip_batch(&name, &commands)?;
            let site = plan
                .sites
                .iter()
                .position(|s| *s == spec.site)
                .context("a host's site is in the plan")?;
            for region in edge.iter().flat_map(|e| &e.serves) {
                let from = plan
                    .sites
                    .iter()
                    .position(|s| s == region)
                    .context("an edge's regions are in the plan")?;
                anycast
                    .entry(EDGE_ANYCAST)
                    .or_default()
                    .insert(from, ports.len());
            }
            routes.insert(spec.addr, ports.len());
            ports.push(wan::Port { dev, site });
            hosts.push(Host {
                name: spec.name.clone(),
                site: spec.site.clone(),
                ns: name,
                addr: spec.addr,
                asn: spec.asn,
            });
        }
        let wan = Wan::start(ports, routes, anycast, plan.sites.clone(), self.seed)?;
        Ok(RealNet {
            hosts,
            plan,
            wan,
            teardown,
        })
    }

    /// Builds the run, or prints the SKIP line and returns `None` when the harness cannot run
    /// here (not root, no right to make namespaces, no TUN).
    pub fn build_or_skip(self) -> anyhow::Result<Option<RealNet>> {
        match self.build() {
            Ok(net) => Ok(Some(net)),
            Err(e) => match e.downcast_ref::<Unavailable>() {
                Some(reason) => {
                    skip(&reason.0);
                    Ok(None)
                }
                None => Err(e),
            },
        }
    }
}

/// Why the harness cannot run on this machine, if it cannot.
fn unavailable() -> Option<String> {
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        return Some(format!(
            "they need root to create network namespaces and TUN devices (running as uid {uid})"
        ));
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("there is no /dev/net/tun".to_string());
    }
    if std::process::Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Some("iproute2's `ip` is not installed".to_string());
    }
    None
}

/// An `EPERM` from `ip route add` as root means an unprivileged container: a skip.
fn not_permitted(e: anyhow::Error) -> anyhow::Error {
    if format!("{e:#}").contains("Operation not permitted") {
        Unavailable(format!("adding the blackhole route was refused: {e:#}")).into()
    } else {
        e
    }
}

/// Prints the SKIP line, once per process, straight to stderr (past the test harness's
/// output capture, so that `cargo test` shows it).
pub fn skip(reason: &str) {
    static PRINTED: Once = Once::new();
    PRINTED.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "SKIP realnet: the real-network end-to-end tests (network namespaces, TUN WAN \
             emulator; tests/realnet/) did not run: {reason}"
        );
    });
}

use route::RouteHold;

/// What must be undone, in this order: namespaces (and their processes), then the route.
struct Teardown {
    namespaces: Vec<String>,
    route: Option<RouteHold>,
}

impl Teardown {
    fn run(&mut self) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        for name in self.namespaces.drain(..).rev() {
            if let Err(e) = ns::destroy(&name) {
                errors.push(format!("{e:#}"));
            }
        }
        if let Some(route) = self.route.take()
            && let Err(e) = route.release()
        {
            errors.push(format!("{e:#}"));
        }
        anyhow::ensure!(errors.is_empty(), "teardown: {}", errors.join("; "));
        Ok(())
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Err(e) = self.run() {
            eprintln!("realnet: {e:#}");
        }
    }
}

/// A running real network; torn down when dropped.
pub struct RealNet {
    hosts: Vec<Host>,
    plan: Plan,
    // Field order is drop order: the emulator (and the devices it holds) goes first.
    wan: Wan,
    teardown: Teardown,
}

impl RealNet {
    /// A builder with no region, 3 probes per region, one origin.
    pub fn builder() -> RealNetBuilder {
        RealNetBuilder {
            regions: Vec::new(),
            probes_per_region: 3,
            origins: 1,
            edges: Vec::new(),
            resolvers: false,
            seed: 0x6d65_7269_6469_616e,
        }
    }

    /// Every host, in plan order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The address plan (blocks with their AS, for GeoIP databases).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Writes GeoIP City and ASN databases for this run's blocks into `dir` (see [`geoip`]);
    /// `countries` maps region ids to ISO country codes.
    pub fn write_geoip(
        &self,
        dir: &std::path::Path,
        countries: &[(&str, &str)],
    ) -> anyhow::Result<geoip::GeoIpFiles> {
        geoip::write(&self.plan, dir, countries)
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> anyhow::Result<&Host> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .with_context(|| format!("no host {name:?} in this run"))
    }

    /// Probe `i` of `region`.
    pub fn probe(&self, region: &str, i: usize) -> anyhow::Result<&Host> {
        self.host(&format!("{region}-p{i}"))
    }

    /// The probes of `region`, in index order (its resolver, also in its site, is not one).
    pub fn probes(&self, region: &str) -> Vec<&Host> {
        self.hosts
            .iter()
            .filter(|h| h.site == region && h.asn.is_some())
            .collect()
    }

    /// The recursive resolver of `region` (built with [`RealNetBuilder::resolvers`]).
    pub fn resolver(&self, region: &str) -> anyhow::Result<&Host> {
        self.host(&plan::resolver_name(region))
    }

    /// The first origin host.
    pub fn origin(&self) -> &Host {
        self.site_host(ORIGIN)
    }

    /// The DNS host.
    pub fn dns(&self) -> &Host {
        self.site_host(DNS)
    }

    /// The coordinator's host.
    pub fn coordinator(&self) -> &Host {
        self.site_host(COORDINATOR)
    }

    fn site_host(&self, site: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.site == site)
            .expect("every plan has one origin, one DNS and one coordinator host")
    }

    /// The WAN emulator: rules, counters, injections.
    pub fn wan(&self) -> &Wan {
        &self.wan
    }

    /// The namespaces of this run.
    pub fn namespaces(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.ns.clone()).collect()
    }

    /// Runs `f` on a new thread inside `host`'s namespace and waits for it: for creating
    /// sockets there. Blocks the caller; for anything that waits on the network from async
    /// code, use [`Self::run_in_background`].
    pub fn run_in<T: Send, F: FnOnce() -> T + Send>(&self, host: &Host, f: F) -> anyhow::Result<T> {
        ns::in_thread(&host.ns, f)
    }

    /// Runs `f` on a new thread inside `host`'s namespace without blocking the runtime.
    pub async fn run_in_background<T, F>(&self, host: &Host, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        ns::spawn_thread(&host.ns, f)?
            .await
            .map_err(|_| anyhow::anyhow!("the thread in {} panicked", host.ns))?
    }

    /// A TCP listener on `host`'s address and `port` (0: any), inside its namespace. Must be
    /// called inside a tokio runtime.
    pub fn tcp_listener(&self, host: &Host, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
        let addr = SocketAddr::from((host.addr, port));
        let std = self
            .run_in(host, || std::net::TcpListener::bind(addr))?
            .with_context(|| format!("binding {addr} in {}", host.ns))?;
        std.set_nonblocking(true)?;
        Ok(tokio::net::TcpListener::from_std(std)?)
    }

    /// A UDP socket on `host`'s address and `port` (0: any), inside its namespace. Must be
    /// called inside a tokio runtime.
    pub fn udp_socket(&self, host: &Host, port: u16) -> anyhow::Result<tokio::net::UdpSocket> {
        let addr = SocketAddr::from((host.addr, port));
        let std = self
            .run_in(host, || std::net::UdpSocket::bind(addr))?
            .with_context(|| format!("binding {addr} in {}", host.ns))?;
        std.set_nonblocking(true)?;
        Ok(tokio::net::UdpSocket::from_std(std)?)
    }

    /// `ip netns exec NS program`: a command that runs inside `host`'s namespace, killed when
    /// dropped, with no standard input and without `RUST_LOG`. Add arguments and spawn it.
    pub fn command(&self, host: &Host, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &host.ns])
            .arg(program)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `program ARGS` inside `host`'s namespace to completion (at most
    /// [`CHILD_BUDGET`]).
    pub async fn exec_in(
        &self,
        host: &Host,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
    ) -> anyhow::Result<Output> {
        let child = self
            .command(host, program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting a command in {}", host.ns))?;
        let out = tokio::time::timeout(CHILD_BUDGET, child.wait_with_output())
            .await
            .with_context(|| format!("{args:?} in {} ran past {CHILD_BUDGET:?}", host.ns))??;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Starts `program ARGS` inside `host`'s namespace, its output discarded unless the
    /// caller redirects it with [`Self::command`] instead. Killed when the child handle is
    /// dropped, and in any case at teardown.
    pub fn spawn_in(
        &self,
        host: &Host,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
    ) -> anyhow::Result<tokio::process::Child> {
        self.command(host, program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting a command in {}", host.ns))
    }

    /// Tears the run down now, reporting what failed (dropping does the same, logging).
    pub fn teardown(self) -> anyhow::Result<()> {
        let RealNet {
            mut wan,
            mut teardown,
            ..
        } = self;
        let health = wan.health();
        wan.stop();
        drop(wan);
        teardown.run()?;
        health
    }
}
