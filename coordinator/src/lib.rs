//! The Meridian coordinator as a library; `main.rs` is a thin CLI over it.
//!
//! - [`config`]: `coordinator.toml`, strictly parsed, with the targets and their checks.
//! - [`pki`]: the coordinator's CA, probe certificates carrying identity and region, tokens.
//! - [`store`]: embedded SQLite storage: probes and raw results, with versioned migrations and
//!   idempotent ingest keyed on (probe, sequence).
//! - [`service`]: the QUIC endpoint: the probe link (mutual TLS, Hello, batches acknowledged
//!   once durable, revocation closing live connections) and enrolment.
//! - [`geoip`]: a probe's network (ASN, country, location) from GeoIP2/GeoLite2 databases, and
//!   the far-from-its-region flag.
//!
//! - [`detect`]: the detection engine, pure and deterministic: results in, incidents out.
//! - [`sim`]: `coordinator simulate`: scenario files, a simulated world in virtual time, scoring.
//! - [`demo`]: `coordinator demo`: the service and simulated probes (the probe crate's spool,
//!   uplink and scheduler over the world model) on loopback in real time, a scripted fault.
//!
//! - [`drafts`]: member-message drafts per incident and stage, from editable templates.
//! - [`export`]: post-mortems of stored incidents (Markdown or JSON, a latency chart in SVG)
//!   and trends of time to detect, communicate and resolve per month and class.
//! - [`metrics`]: `/metrics` for Prometheus: ingest counters, probe liveness and clocks, open
//!   incidents, per-(check, region, phase) latency histograms.
//! - [`alerting`]: incident alerts to Alertmanager, signed webhooks, Slack and PagerDuty.
//!
//! The web map arrives with its issue.

pub mod alerting;
pub mod config;
pub mod demo;
pub mod detect;
pub mod drafts;
pub mod export;
pub mod geoip;
pub mod maintenance;
pub mod metrics;
pub mod pki;
pub mod service;
pub mod sim;
pub mod store;
pub mod web;
