//! The Meridian coordinator as a library; `main.rs` is a thin CLI over it.
//!
//! - [`config`]: `coordinator.toml`, strictly parsed, with the targets and their checks.
//! - [`pki`]: the coordinator's CA, probe certificates carrying identity and region, tokens.
//! - [`store`]: embedded SQLite storage: probes and raw results, with versioned migrations and
//!   idempotent ingest keyed on (probe, sequence).
//! - [`service`]: the QUIC endpoint: the probe link (mutual TLS, Hello, batches acknowledged
//!   once durable, revocation closing live connections) and enrolment.
//!
//! Detection and the web map arrive with their issues.

pub mod config;
pub mod pki;
pub mod service;
pub mod store;
