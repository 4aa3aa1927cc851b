//! The WAN emulator: a userspace router between the TUN devices of every namespace of a run,
//! delaying, jittering, dropping and blackholing IP packets by [`Rules`] that the test changes
//! while traffic flows. This kernel has no netem; this does its job at the packet level, so
//! TCP handshakes, TLS flights, QUIC and DNS all see the injected path as they would a real
//! one.
//!
//! One thread owns every TUN file descriptor. It waits in `ppoll(2)` for the first of: a packet
//! on any device, or the due time of the earliest queued packet (a binary heap ordered by due
//! time, then arrival). A packet read from namespace A's device is routed by its IPv4
//! destination to the device of the namespace holding that address, the rules for (A's site →
//! B's site, source, destination) decide its fate, and it is written to B's device when due.
//! The handle, [`Wan`], shares the rules, the counters and the injection log with the thread
//! behind one mutex, locked once per packet.
//!
//! # Decisions
//! - A dedicated thread and `ppoll`, not tokio timers: tokio's timer wheel has millisecond
//!   resolution and rounds every sleep up, which would add up to a millisecond per hop to a
//!   validation that allows ±2 ms per round trip. `ppoll` takes a nanosecond timeout, and the
//!   thread sets its timer slack to 1 ns. Measured overhead per hop: tens of microseconds.
//! - Packets of one flow (addresses, protocol, TCP/UDP ports) leave in the order they came,
//!   even with jitter or after a rule change shortens the delay: a packet is never due before
//!   the previous packet of its flow. Other flows are not held back by it. Real paths rarely reorder, and reordering would make TCP's timings
//!   depend on duplicate-ACK heuristics rather than on the injected delay.
//! - A rule applies to packets read after it is set; packets already queued keep their due
//!   time, like a change of netem's parameters. [`Wan::set_link`] and friends record the
//!   change in the injection log with its wall-clock and monotonic timestamps: time to detect
//!   is measured from there.
//! - Loss and jitter come from a PCG generator seeded by the builder (`RealNetBuilder::seed`):
//!   the same seed gives the same draws for the same packet sequence.
//! - Anycast: an address several namespaces hold (the CDN's, [`super::plan::EDGE_ANYCAST`]) is
//!   delivered by the sender's site, to the holder chosen for that site, as BGP takes each
//!   client of an anycast prefix to its nearest PoP. Replies come from the anycast address and
//!   route back by their unicast destination.
//! - Only IPv4 is routed; anything else a namespace emits (IPv6 router solicitations) is
//!   counted as ignored. A destination no namespace holds is counted as unroutable and
//!   dropped: the emulator never forwards anywhere but to the run's own devices.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;
use rand::{RngExt as _, SeedableRng as _};
use rand_pcg::Pcg64Mcg;
use tokio::time::Instant;
use tun_rs::SyncDevice;

use super::rules::{Link, Rule, Rules};

/// Longest wait in `ppoll` with nothing queued: how quickly the thread notices a stop.
const IDLE: Duration = Duration::from_millis(20);
/// Most packets read from one device before looking at the others and the queue.
const BATCH: usize = 64;
/// Flows remembered before forgetting those with nothing queued.
const FLOWS: usize = 4096;
/// Larger than any packet a TUN device without offloads delivers.
const PACKET: usize = 65_536;

/// Per anycast address, the port that receives packets for it from each sending site.
pub type Anycast = HashMap<Ipv4Addr, HashMap<usize, usize>>;

/// One namespace's TUN device, as the emulator holds it.
pub struct Port {
    /// The device, opened inside the namespace.
    pub dev: SyncDevice,
    /// Index of the namespace's site.
    pub site: usize,
}

/// Packets of one direction between two sites, or of the whole WAN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Written to the destination's device.
    pub forwarded: u64,
    /// Dropped by a loss draw.
    pub lost: u64,
    /// Dropped by a blackhole rule.
    pub blackholed: u64,
}

/// A snapshot of the emulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WanStats {
    /// Every link added up.
    pub total: Counts,
    /// Per direction, `(from site, to site)`, for the pairs that saw a packet.
    pub links: BTreeMap<(String, String), Counts>,
    /// IPv4 packets for an address no namespace of the run holds (dropped).
    pub unroutable: u64,
    /// Packets that were not IPv4 (dropped).
    pub ignored: u64,
    /// Writes to a device that failed (the packet is lost).
    pub send_errors: u64,
    /// Packets queued, not yet due.
    pub queued: usize,
}

impl WanStats {
    /// The counts of one direction (zero when it saw no packet).
    pub fn link(&self, from: &str, to: &str) -> Counts {
        self.links
            .get(&(from.to_string(), to.to_string()))
            .copied()
            .unwrap_or_default()
    }
}

/// One rule change, as the emulator applied it.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// Wall-clock time of the change (what a coordinator's timestamps compare with).
    pub at: SystemTime,
    /// Monotonic time of the change.
    pub instant: Instant,
    /// What changed, e.g. `eu-central -> origin: Rule { delay: 50ms, .. }`.
    pub change: String,
}

/// What the handle and the thread share.
#[derive(Default)]
struct State {
    rules: Rules,
    links: HashMap<(usize, usize), Counts>,
    unroutable: u64,
    ignored: u64,
    send_errors: u64,
    queued: usize,
    injections: Vec<Injection>,
    /// Set when the thread stopped on an error.
    failed: Option<String>,
}

/// The running emulator; stopped by [`Wan::stop`] or when dropped.
pub struct Wan {
    /// Site names by index.
    sites: Vec<String>,
    /// Addresses the run holds, for validating host rules.
    hosts: Vec<Ipv4Addr>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Wan {
    /// Starts forwarding between `ports`; `routes` maps every unicast address of the run to
    /// the index of the port (namespace) holding it, `anycast` the anycast addresses by the
    /// sender's site; `sites` names the ports' site indices.
    pub fn start(
        ports: Vec<Port>,
        routes: HashMap<Ipv4Addr, usize>,
        anycast: Anycast,
        sites: Vec<String>,
        seed: u64,
    ) -> anyhow::Result<Wan> {
        for port in &ports {
            port.dev
                .set_nonblocking(true)
                .context("making a TUN device non-blocking")?;
        }
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let hosts = routes.keys().copied().collect();
        let engine = Engine {
            ports,
            routes,
            anycast,
            state: state.clone(),
            stop: stop.clone(),
            rng: Pcg64Mcg::seed_from_u64(seed),
            heap: BinaryHeap::new(),
            seq: 0,
            flows: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("wan emulator".to_string())
            .spawn(move || engine.run())
            .context("starting the WAN emulator thread")?;
        Ok(Wan {
            sites,
            hosts,
            state,
            stop,
            thread: Some(thread),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn site(&self, name: &str) -> anyhow::Result<Option<usize>> {
        if name == "*" {
            return Ok(None);
        }
        self.sites
            .iter()
            .position(|s| s == name)
            .map(Some)
            .with_context(|| format!("no site {name:?} (sites: {:?}, or \"*\")", self.sites))
    }

    fn record(state: &mut State, change: String) -> Injection {
        let injection = Injection {
            at: SystemTime::now(),
            instant: Instant::now(),
            change,
        };
        state.injections.push(injection.clone());
        injection
    }

    /// Sets the rule for packets from site `from` to site `to` (either may be `"*"`: every
    /// site, or with the other side named, every other site); `Rule::default()` clears it.
    /// Takes effect for the next packet read.
    pub fn set_link(&self, from: &str, to: &str, rule: Rule) -> anyhow::Result<Injection> {
        rule.validate()?;
        let link: Link = (self.site(from)?, self.site(to)?);
        let mut state = self.lock();
        state.rules.set_link(link, rule);
        Ok(Self::record(
            &mut state,
            format!("{from} -> {to}: {rule:?}"),
        ))
    }

    /// Sets the same rule both ways between sites `a` and `b`, as one injection.
    pub fn set_path(&self, a: &str, b: &str, rule: Rule) -> anyhow::Result<Injection> {
        rule.validate()?;
        let (ia, ib) = (self.site(a)?, self.site(b)?);
        let mut state = self.lock();
        state.rules.set_link((ia, ib), rule);
        state.rules.set_link((ib, ia), rule);
        Ok(Self::record(&mut state, format!("{a} <-> {b}: {rule:?}")))
    }

    /// Sets the rule for every packet from or to `addr` (one host: the probe-fault scenario),
    /// on top of the link rules; `Rule::default()` clears it.
    pub fn set_host(&self, addr: Ipv4Addr, rule: Rule) -> anyhow::Result<Injection> {
        rule.validate()?;
        anyhow::ensure!(
            self.hosts.contains(&addr),
            "{addr} is not a host of this run"
        );
        let mut state = self.lock();
        state.rules.set_host(addr, rule);
        Ok(Self::record(&mut state, format!("host {addr}: {rule:?}")))
    }

    /// Removes every rule.
    pub fn clear(&self) -> Injection {
        let mut state = self.lock();
        state.rules.clear();
        Self::record(&mut state, "clear".to_string())
    }

    /// Every rule change so far, oldest first.
    pub fn injections(&self) -> Vec<Injection> {
        self.lock().injections.clone()
    }

    /// The counters now.
    pub fn stats(&self) -> WanStats {
        let state = self.lock();
        let mut stats = WanStats {
            unroutable: state.unroutable,
            ignored: state.ignored,
            send_errors: state.send_errors,
            queued: state.queued,
            ..WanStats::default()
        };
        for (&(from, to), counts) in &state.links {
            let name = |i: usize| self.sites.get(i).cloned().unwrap_or_default();
            stats.links.insert((name(from), name(to)), *counts);
            stats.total.forwarded += counts.forwarded;
            stats.total.lost += counts.lost;
            stats.total.blackholed += counts.blackholed;
        }
        stats
    }

    /// `Err` with the reason if the emulator thread stopped on an error.
    pub fn health(&self) -> anyhow::Result<()> {
        match &self.lock().failed {
            Some(reason) => anyhow::bail!("the WAN emulator stopped: {reason}"),
            None => Ok(()),
        }
    }

    /// Stops the thread and closes every device (their namespaces lose their only route).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Wan {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A packet waiting for its due time.
struct Pending {
    due: Instant,
    /// Arrival order: ties on `due` leave first come, first served.
    seq: u64,
    out: usize,
    link: (usize, usize),
    packet: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed: `BinaryHeap` is a max-heap, the earliest packet must come out first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// The emulator thread's own state.
struct Engine {
    ports: Vec<Port>,
    routes: HashMap<Ipv4Addr, usize>,
    anycast: Anycast,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    rng: Pcg64Mcg,
    heap: BinaryHeap<Pending>,
    seq: u64,
    /// Due time of the latest packet of each flow, so that none overtakes another.
    flows: HashMap<Flow, Instant>,
}

/// Source and destination of an IPv4 packet; `None` for anything else.
fn ipv4_addresses(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if packet.len() < 20 || packet.first()? >> 4 != 4 {
        return None;
    }
    let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    Some((src.into(), dst.into()))
}

/// The flow of an IPv4 packet: addresses, protocol, and for TCP and UDP the ports (zero for
/// other protocols and for fragments after the first, which carry no ports).
type Flow = (Ipv4Addr, Ipv4Addr, u8, u16, u16);

fn flow(packet: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Flow {
    let proto = packet.get(9).copied().unwrap_or(0);
    let header = usize::from(packet.first().copied().unwrap_or(0) & 0x0f) * 4;
    let offset = packet
        .get(6..8)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) & 0x1fff);
    let port = |at: usize| {
        packet
            .get(header + at..header + at + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    if matches!(proto, 6 | 17) && offset == 0 {
        (src, dst, proto, port(0), port(2))
    } else {
        (src, dst, proto, 0, 0)
    }
}

/// Locks the shared state; a panic while holding it leaves plain counters behind: still usable.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    fn run(mut self) {
        // Timers fire this late at most; the default slack is 50 µs.
        let _ = nix::sys::prctl::set_timerslack(1);
        let mut buf = vec![0u8; PACKET];
        while !self.stop.load(Ordering::SeqCst) {
            self.send_due();
            let now = Instant::now();
            let wait = self
                .heap
                .peek()
                .map_or(IDLE, |p| p.due.saturating_duration_since(now))
                .min(IDLE);
            let ready = match self.wait(wait) {
                Ok(ready) => ready,
                Err(e) => {
                    lock(&self.state).failed = Some(format!("{e:#}"));
                    return;
                }
            };
            for i in ready {
                for _ in 0..BATCH {
                    let Some(port) = self.ports.get(i) else { break };
                    match port.dev.recv(&mut buf) {
                        Ok(n) => {
                            let packet = buf.get(..n).unwrap_or_default().to_vec();
                            self.accept(i, packet);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            lock(&self.state).failed = Some(format!("reading a TUN device: {e}"));
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Waits up to `wait` for packets; the indices of the devices that have some.
    fn wait(&self, wait: Duration) -> anyhow::Result<Vec<usize>> {
        let mut fds: Vec<PollFd<'_>> = self
            .ports
            .iter()
            .map(|p| PollFd::new(p.dev.as_fd(), PollFlags::POLLIN))
            .collect();
        match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("ppoll on the TUN devices"),
        }
        Ok(fds
            .iter()
            .enumerate()
            .filter(|(_, fd)| fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
            .map(|(i, _)| i)
            .collect())
    }

    /// Decides the fate of a packet read from port `port_in`: dropped, or queued.
    fn accept(&mut self, port_in: usize, packet: Vec<u8>) {
        let now = Instant::now();
        let Some((src, dst)) = ipv4_addresses(&packet) else {
            lock(&self.state).ignored += 1;
            return;
        };
        let from = self.ports.get(port_in).map_or(0, |p| p.site);
        let out = self.routes.get(&dst).copied().or_else(|| {
            self.anycast
                .get(&dst)
                .and_then(|by_site| by_site.get(&from).copied())
        });
        let Some(out) = out else {
            lock(&self.state).unroutable += 1;
            return;
        };
        let to = self.ports.get(out).map_or(0, |p| p.site);
        let rule = {
            let mut state = lock(&self.state);
            let rule = state.rules.effective(from, to, src, dst);
            if rule.blackhole {
                state.links.entry((from, to)).or_default().blackholed += 1;
                return;
            }
            if rule.loss > 0.0 && self.rng.random::<f64>() < rule.loss {
                state.links.entry((from, to)).or_default().lost += 1;
                return;
            }
            state.queued += 1;
            rule
        };
        let mut delay = rule.delay;
        if !rule.jitter.is_zero() {
            let j = rule.jitter.as_secs_f64();
            let drawn = delay.as_secs_f64() + self.rng.random_range(-j..=j);
            delay = Duration::from_secs_f64(drawn.max(0.0));
        }
        let mut due = now + delay;
        let flow = flow(&packet, src, dst);
        if let Some(&last) = self.flows.get(&flow) {
            due = due.max(last);
        }
        if self.flows.len() >= FLOWS {
            // A flow whose last packet is due already constrains nothing.
            self.flows.retain(|_, last| *last > now);
        }
        self.flows.insert(flow, due);
        self.seq += 1;
        self.heap.push(Pending {
            due,
            seq: self.seq,
            out,
            link: (from, to),
            packet,
        });
    }

    /// Writes every packet that is due.
    fn send_due(&mut self) {
        let now = Instant::now();
        while self.heap.peek().is_some_and(|p| p.due <= now) {
            let Some(p) = self.heap.pop() else { break };
            let sent = self.ports.get(p.out).map(|port| port.dev.send(&p.packet));
            let mut state = lock(&self.state);
            state.queued = state.queued.saturating_sub(1);
            match sent {
                Some(Ok(_)) => state.links.entry(p.link).or_default().forwarded += 1,
                _ => state.send_errors += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_from_ipv4_headers_only() {
        let mut packet = [0u8; 20];
        packet[0] = 0x45;
        packet[12..16].copy_from_slice(&[198, 19, 0, 10]);
        packet[16..20].copy_from_slice(&[198, 18, 1, 10]);
        assert_eq!(
            ipv4_addresses(&packet),
            Some((Ipv4Addr::new(198, 19, 0, 10), Ipv4Addr::new(198, 18, 1, 10)))
        );
        let (src, dst) = ipv4_addresses(&packet).unwrap();
        assert_eq!(flow(&packet, src, dst), (src, dst, 0, 0, 0));
        let mut tcp = packet.to_vec();
        tcp[9] = 6;
        tcp.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb]);
        assert_eq!(flow(&tcp, src, dst), (src, dst, 6, 40_000, 443));
        tcp[6] = 0x00;
        tcp[7] = 0x10;
        assert_eq!(
            flow(&tcp, src, dst),
            (src, dst, 6, 0, 0),
            "a later fragment"
        );
        packet[0] = 0x60;
        assert_eq!(ipv4_addresses(&packet), None, "IPv6");
        assert_eq!(ipv4_addresses(&packet[..10]), None, "truncated");
    }

    #[test]
    fn the_earliest_packet_leaves_first_and_ties_keep_arrival_order() {
        let now = Instant::now();
        let p = |ms: u64, seq: u64| Pending {
            due: now + Duration::from_millis(ms),
            seq,
            out: 0,
            link: (0, 0),
            packet: Vec::new(),
        };
        let mut heap = BinaryHeap::from([p(50, 1), p(10, 2), p(10, 3), p(0, 4)]);
        let order: Vec<u64> = std::iter::from_fn(|| heap.pop().map(|p| p.seq)).collect();
        assert_eq!(order, [4, 2, 3, 1]);
    }
}
