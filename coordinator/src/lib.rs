//! The Meridian coordinator as a library; `main.rs` is a thin CLI over it.
//!
//! - [`store`]: embedded SQLite storage: probes and raw results, with versioned migrations and
//!   idempotent ingest keyed on (probe, sequence).
//!
//! Ingest over QUIC, enrolment, detection and the web map arrive with their issues.

pub mod store;
