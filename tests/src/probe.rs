//! Running checks in-process: a [`RunnerBuilder`] that makes a [`Runner`] whose resolver is a
//! DNS server the test started and whose policy allows exactly 127.0.0.1/32 by default, and
//! small constructors for checks.
//!
//! The default policy is the point: loopback targets of the test are allowed, while any other
//! non-public address (127.0.0.2, `::1`, 169.254.169.254) is still refused as a real probe
//! would refuse it, so redirect and resolution tests see `blocked-target` without the address
//! ever being contacted. There is deliberately no way to build a runner on the system
//! resolver.

use std::time::Duration;

use meridian_probe::http::{HttpEnv, tls};
use meridian_probe::runner::{Runner, unix_ms};
use meridian_probe::safety::TargetPolicy;
use meridian_shared::check::{Check, CheckId, CheckSpec, DnsCheck, HttpCheck, ResolverSpec};
use meridian_shared::result::CheckResult;
use rustls_pki_types::CertificateDer;
use url::Url;

use crate::origin::TestOrigin;

/// The tests' target policy: strict, plus 127.0.0.1/32.
pub fn loopback_policy() -> TargetPolicy {
    TargetPolicy::with_allowed(vec!["127.0.0.1/32".parse().expect("a valid network")])
}

/// Builds the [`Runner`] a test checks with.
pub struct RunnerBuilder {
    resolver: ResolverSpec,
    policy: TargetPolicy,
    roots: Vec<CertificateDer<'static>>,
}

impl RunnerBuilder {
    /// A runner asking `resolver` (a server the test started: never `System`), with
    /// [`loopback_policy`] and no extra trusted CA.
    pub fn new(resolver: ResolverSpec) -> RunnerBuilder {
        assert!(
            !matches!(resolver, ResolverSpec::System),
            "tests query only DNS servers they started"
        );
        RunnerBuilder {
            resolver,
            policy: loopback_policy(),
            roots: Vec::new(),
        }
    }

    /// Replaces the target policy.
    pub fn policy(mut self, policy: TargetPolicy) -> RunnerBuilder {
        self.policy = policy;
        self
    }

    /// Trusts the CA of a TLS origin (no-op for a plain one).
    pub fn trust(mut self, origin: &TestOrigin) -> RunnerBuilder {
        self.roots.extend(origin.ca_der());
        self
    }

    /// Builds the runner.
    pub fn build(self) -> anyhow::Result<Runner> {
        Ok(Runner {
            probe_id: "it-probe".to_string(),
            region: "eu-central".to_string(),
            http: HttpEnv {
                policy: self.policy,
                tls: tls::client_config(&self.roots)?,
                resolver: self.resolver,
                user_agent: "meridian-tests".to_string(),
            },
        })
    }
}

/// A check named `id` with a 60 s interval.
pub fn check(id: &str, spec: CheckSpec) -> Check {
    Check {
        id: CheckId::parse(id).expect("tests use valid check ids"),
        interval: Duration::from_secs(60),
        spec,
    }
}

/// A GET of `url` with the defaults of [`HttpCheck::get`], adjusted by `tweak`.
pub fn http_check(url: Url, tweak: impl FnOnce(&mut HttpCheck)) -> Check {
    let mut spec = HttpCheck::get(url);
    tweak(&mut spec);
    check("http", CheckSpec::Http(spec))
}

/// A DNS check from its spec.
pub fn dns_check(spec: DnsCheck) -> Check {
    check("dns", CheckSpec::Dns(spec))
}

/// Runs `check` now.
pub async fn run(runner: &Runner, check: &Check) -> CheckResult {
    runner.run(check, unix_ms()).await
}

/// The whole result as JSON, for assertion messages.
pub fn show(r: &CheckResult) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{r:?} ({e})"))
}

/// The error class of a result as its wire name, or `"none"` when it passed.
pub fn class(r: &CheckResult) -> &'static str {
    r.error.as_ref().map_or("none", |e| e.class.as_str())
}
