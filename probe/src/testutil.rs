//! Test helpers shared by the probe's unit tests: a fake executor and check builders.

use std::sync::Mutex;
use std::time::Duration;

use meridian_shared::check::{Check, CheckId, CheckSpec, DnsCheck, RecordType, ResolverSpec};
use meridian_shared::result::{CheckResult, Phases};

use crate::schedule::Execute;

/// Pretends each run takes `run_for`; records every run as (check id, scheduled_ms).
pub(crate) struct Fake {
    run_for: Duration,
    pub(crate) runs: Mutex<Vec<(String, i64)>>,
}

impl Fake {
    pub(crate) fn new(run_for: Duration) -> Fake {
        Fake {
            run_for,
            runs: Mutex::new(Vec::new()),
        }
    }
}

impl Execute for Fake {
    async fn execute(&self, check: &Check, scheduled_ms: i64) -> CheckResult {
        self.runs
            .lock()
            .unwrap()
            .push((check.id.as_str().to_string(), scheduled_ms));
        tokio::time::sleep(self.run_for).await;
        CheckResult {
            probe_id: "p".into(),
            region: "eu-central".into(),
            check_id: check.id.clone(),
            scheduled_ms,
            started_ms: scheduled_ms,
            phases: Phases::default(),
            remote_ip: None,
            http: None,
            dns: None,
            error: None,
            warnings: vec![],
        }
    }
}

/// A DNS check (never run for real) with this id and interval in seconds.
pub(crate) fn dns_check(id: &str, interval_s: u64) -> Check {
    Check {
        id: CheckId::parse(id).unwrap(),
        interval: Duration::from_secs(interval_s),
        spec: CheckSpec::Dns(DnsCheck::new(
            "example.test",
            RecordType::A,
            ResolverSpec::System,
        )),
    }
}
