//! Name resolution for checks, on hickory-resolver, with no caching.
//!
//! Every lookup goes to the network: a probe measures resolution, and a cached answer would
//! report 0 ms while the resolver is on fire. A fresh resolver is built per check run (cheap:
//! no sockets are opened until the first query), so a TCP check never rides on a connection
//! left open by the previous run and `/etc/resolv.conf` changes are picked up at once.
//! Failures are mapped to [`LookupFailure`] so callers can tell a timeout from an answer.

use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use meridian_shared::check::{Rcode, ResolverSpec};

/// Builds a resolver for `spec` whose queries, retries included, fit in `budget`.
pub fn build(spec: ResolverSpec, budget: Duration) -> Result<TokioResolver, String> {
    let (config, mut opts) = match spec {
        ResolverSpec::System => hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?,
        ResolverSpec::Udp(addr) | ResolverSpec::Tcp(addr) => {
            let mut conns = Vec::new();
            if matches!(spec, ResolverSpec::Udp(_)) {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                conns.push(udp);
            }
            // UDP checks fall back to TCP on truncation, like any stub resolver.
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            conns.push(tcp);
            let ns = NameServerConfig::new(addr.ip(), true, conns);
            let mut opts = ResolverOpts::default();
            opts.use_hosts_file = ResolveHosts::Never;
            (ResolverConfig::from_name_servers(vec![ns]), opts)
        }
    };
    opts.cache_size = 0;
    // Two tries, each with half the budget: one lost UDP datagram is not an outage.
    opts.attempts = 2;
    opts.timeout = (budget / 2).max(Duration::from_millis(50));
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.ndots = 0;
    hickory_resolver::Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| format!("cannot build a resolver: {e}"))
}

/// Why a lookup produced no records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupFailure {
    /// No answer in time.
    Timeout,
    /// The server answered with this code and no usable records (NXDOMAIN, SERVFAIL, or
    /// NOERROR with no data of the asked type).
    Rcode(Rcode),
    /// Anything else: network error, malformed response; the text says what.
    Other(String),
}

/// Maps hickory's error into what a check reports.
pub fn classify(err: &NetError) -> LookupFailure {
    match err {
        NetError::Timeout => LookupFailure::Timeout,
        NetError::Dns(DnsError::NoRecordsFound(nr)) => {
            LookupFailure::Rcode(Rcode::from_u16(u16::from(nr.response_code)))
        }
        NetError::Dns(DnsError::ResponseCode(code)) => {
            LookupFailure::Rcode(Rcode::from_u16(u16::from(*code)))
        }
        other => LookupFailure::Other(other.to_string()),
    }
}
