//! Runs one check of either kind and wraps what it found into a [`CheckResult`] record.

use std::time::{SystemTime, UNIX_EPOCH};

use meridian_shared::check::{Check, CheckSpec};
use meridian_shared::result::CheckResult;

use crate::dns;
use crate::http::{self, HttpEnv};

/// Who is running checks, and with what environment.
#[derive(Clone)]
pub struct Runner {
    /// Probe id stamped on every result.
    pub probe_id: String,
    /// Region id stamped on every result.
    pub region: String,
    /// Shared HTTP environment: policy, TLS roots, resolver.
    pub http: HttpEnv,
}

/// Wall clock in Unix milliseconds; results carry wall time so that probes can be compared.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Runner {
    /// Runs `check` now; `scheduled_ms` is the slot it was meant for (Unix ms).
    pub async fn run(&self, check: &Check, scheduled_ms: i64) -> CheckResult {
        let started_ms = unix_ms();
        let mut result = CheckResult {
            probe_id: self.probe_id.clone(),
            region: self.region.clone(),
            check_id: check.id.clone(),
            scheduled_ms,
            started_ms,
            phases: Default::default(),
            remote_ip: None,
            http: None,
            dns: None,
            error: None,
            warnings: Vec::new(),
        };
        match &check.spec {
            CheckSpec::Http(spec) => {
                let out = http::run(spec, &self.http, started_ms.div_euclid(1000)).await;
                result.phases = out.phases;
                result.remote_ip = out.remote_ip;
                result.http = out.detail;
                result.error = out.error;
                result.warnings = out.warnings;
            }
            CheckSpec::Dns(spec) => {
                let out = dns::run(spec).await;
                result.phases = out.phases;
                result.remote_ip = out.remote_ip;
                result.dns = out.detail;
                result.error = out.error;
            }
        }
        result
    }
}
