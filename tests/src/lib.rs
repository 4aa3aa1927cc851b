//! Test harness for Meridian's end-to-end tests and benchmarks: real servers on loopback that
//! the tests start themselves (an authoritative DNS server, the scriptable origin), and helpers
//! to run the real `probe` binary. Nothing here talks to any address outside the machine, and
//! nothing uses the system resolver.
//!
//! - [`dns`]: [`ZoneServer`] (hickory-server serving [`dns::ZONE`], UDP and TCP, counting
//!   queries) and [`ScriptedDns`] (never answers, or answers SERVFAIL).
//! - [`origin`]: [`OriginBuilder`] → [`TestOrigin`], plain or TLS with a chosen version set
//!   and certificate lifetime.
//! - [`probe`]: [`RunnerBuilder`], a runner on the test's DNS server that allows exactly
//!   127.0.0.1/32, and check constructors.
//! - [`raw`]: [`RawServer`], a TCP server that answers with fixed bytes or holds the
//!   connection in silence, for protocol failures.
//! - [`cli`]: finding and running the `probe` binary, one-shot or as a long-running agent.
//! - [`coordinator`]: the `coordinator` binary: one-shot commands (a probe enrolled in a region
//!   in one call), and `coordinator run` found by its "listening on" line, killed or stopped.
//! - [`receiver`]: [`receiver::Receiver`], an HTTP receiver recording every request (path,
//!   headers, raw body) for the coordinator's alert sinks, optionally failing the first few.
//! - [`status`]: [`StatusOrigin`], an origin answering every request with a status the test
//!   switches at run time (an outage, a recovery).
//! - [`mmdb`]: [`mmdb::MmdbBuilder`], small MaxMind DB (`.mmdb`) files built in the test, for
//!   the coordinator's GeoIP lookups.
//! - [`realnet`]: the real-network harness (root only): network namespaces per region probe,
//!   origin, DNS and coordinator, joined by a userspace WAN emulator on TUN devices.
//! - [`browser`]: [`browser::Browser`], headless Chromium driven through chromedriver (W3C
//!   WebDriver over loopback HTTP) for the coordinator's web pages; screenshots under
//!   [`browser::screenshot_dir`].
//! - [`synth`]: synthetic check results and deterministic noise for the detection benchmarks.
//!
//! A typical test:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use meridian_tests::{OriginBuilder, RunnerBuilder, ZoneServer, probe};
//! let dns = ZoneServer::start().await?;
//! let origin = OriginBuilder::plain().start().await?;
//! let runner = RunnerBuilder::new(dns.udp()).build()?;
//! let check = probe::http_check(origin.url_via("origin.example.test", "/?delay_ms=200"), |_| {});
//! let result = probe::run(&runner, &check).await;
//! assert!(result.phases.ttfb >= Some(195_000));
//! # Ok(()) }
//! ```

pub mod browser;
pub mod cli;
pub mod coordinator;
pub mod dns;
pub mod mmdb;
pub mod origin;
pub mod probe;
pub mod raw;
pub mod realnet;
pub mod receiver;
pub mod relay;
pub mod status;
pub mod synth;

pub use dns::{ScriptedDns, ZoneServer};
pub use origin::{OriginBuilder, TestOrigin};
pub use probe::RunnerBuilder;
pub use raw::RawServer;
pub use status::StatusOrigin;
