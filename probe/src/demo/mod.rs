//! The demo run by `meridian-demo`: Meridian's main job on an embedded default, with no external service.
//!
//! Starts a local HTTPS origin (HTTP/2 and HTTP/1.1, TLS 1.2/1.3, a throw-away CA), a plain
//! HTTP origin and a tiny authoritative DNS server for `demo.test`, all on loopback, then runs
//! the real scheduler and runner against them for a few rounds and prints each result. The
//! demo targets are on loopback, so the demo allows 127.0.0.0/8 explicitly: a probe's default
//! policy refuses it.

pub mod dns;
pub mod origin;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use meridian_shared::check::{
    Check, CheckId, CheckSpec, DnsCheck, HttpCheck, RecordType, ResolverSpec,
};
use meridian_shared::result::CheckResult;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::http::{HttpEnv, tls};
use crate::runner::{Runner, unix_ms};
use crate::safety::TargetPolicy;
use crate::schedule::{self, Plan, Slot, Stats};
use origin::{Origin, TestPki, TlsVersions};

/// Runs the demo for `rounds` rounds of `interval`, printing each result.
pub async fn run(rounds: u32, interval: Duration) -> anyhow::Result<()> {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let pki = TestPki::generate(&["origin.demo.test", "localhost", "127.0.0.1"], 90)
        .context("making the demo CA")?;
    let https = Origin::start(
        TcpListener::bind((loopback, 0)).await?,
        Some(pki.server_config(TlsVersions::Both)?),
        "demo-origin",
    )?;
    let plain = Origin::start(TcpListener::bind((loopback, 0)).await?, None, "demo-origin")?;
    let (dns_addr, _dns) = dns::start("demo.test.", loopback).await?;

    let (hp, pp) = (https.addr.port(), plain.addr.port());
    let http_check = |id: &str, url: String, tweak: fn(&mut HttpCheck)| -> anyhow::Result<Check> {
        let mut spec = HttpCheck::get(url.parse()?);
        tweak(&mut spec);
        Ok(Check {
            id: CheckId::parse(id).map_err(anyhow::Error::msg)?,
            interval,
            spec: CheckSpec::Http(spec),
        })
    };
    let checks = vec![
        http_check("home", format!("https://origin.demo.test:{hp}/"), |_| {})?,
        http_check(
            "api-slow",
            format!("https://origin.demo.test:{hp}/api?delay_ms=150"),
            |_| {},
        )?,
        http_check(
            "download",
            format!("https://origin.demo.test:{hp}/big?size=2000000&body_delay_ms=80"),
            |c| {
                c.max_body_bytes = 4 << 20;
            },
        )?,
        http_check(
            "checkout",
            format!("http://origin.demo.test:{pp}/checkout?status=503"),
            |_| {},
        )?,
        http_check(
            "old-link",
            format!(
                "http://origin.demo.test:{pp}/old?status=301&location=https://origin.demo.test:{hp}/new"
            ),
            |_| {},
        )?,
        Check {
            id: CheckId::parse("dns").map_err(anyhow::Error::msg)?,
            interval,
            spec: CheckSpec::Dns(DnsCheck::new(
                "origin.demo.test",
                RecordType::A,
                ResolverSpec::Udp(dns_addr),
            )),
        },
    ];

    println!(
        "Meridian probe demo: a local origin at https://origin.demo.test:{hp}/ and http://origin.demo.test:{pp}/,"
    );
    println!(
        "DNS for demo.test at {dns_addr}, the demo CA trusted, loopback allowed for this demo only."
    );
    println!(
        "{} checks every {}, {rounds} rounds. Phases are each on their own, in ms.\n",
        checks.len(),
        humantime::format_duration(interval)
    );

    let runner = Arc::new(Runner {
        probe_id: "demo-probe".to_string(),
        region: "eu-central".to_string(),
        http: HttpEnv {
            policy: TargetPolicy::with_allowed(vec!["127.0.0.0/8".parse()?]),
            tls: tls::client_config(std::slice::from_ref(&pki.ca_der))?,
            resolver: ResolverSpec::Udp(dns_addr),
            user_agent: crate::agent::USER_AGENT.to_string(),
        },
    });
    let (tx, mut rx) = mpsc::channel::<CheckResult>(64);
    let expected = checks.len() * rounds as usize;
    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(async move {
        let plan = Plan {
            checks,
            slot: Slot::ALONE,
            probe_id: "demo-probe".to_string(),
            concurrency: 8,
            wall_now_ms: unix_ms(),
        };
        schedule::run(runner, plan, tx, stats, async {
            let _ = stop_rx.await;
        })
        .await;
    });
    let mut seen = 0;
    while seen < expected {
        let Some(result) = rx.recv().await else { break };
        seen += 1;
        println!("{}", crate::agent::summary(&result));
        if seen % (expected / rounds.max(1) as usize).max(1) == 0 {
            println!();
        }
    }
    let _ = stop_tx.send(());
    scheduler.await?;
    println!(
        "The origin answered {} requests. See README.md for `probe check` and `probe run`.",
        https.requests() + plain.requests()
    );
    Ok(())
}
