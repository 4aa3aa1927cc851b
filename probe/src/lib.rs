//! The Meridian probe agent as a library: the binary in `main.rs` is a thin CLI over it, and
//! the end-to-end tests and benchmarks drive it directly.
//!
//! Data flows one way: [`schedule`] decides when → [`runner`] runs a check ([`http`] or
//! [`dns`], vetted by [`safety`], names resolved by [`resolve`]) → the result goes to the
//! agent's sink ([`agent`]). [`config`] reads `probe.toml`; [`output`] renders results for
//! people and scripts; [`demo`] holds the built-in demo origin and DNS zone. [`spool`] is the
//! durable on-disk queue results wait in until every coordinator has acknowledged them;
//! [`uplink`] delivers them over QUIC, with the identity [`enroll`] obtained (and [`identity`]
//! reads back). What coordinators send back is applied by the agent: [`assignment`] keeps each
//! coordinator's latest assignment on disk and merges them, [`supervise`] restarts the
//! scheduler when the merge changes, and [`burst`] runs a check on demand within the same
//! concurrency limit. [`metrics`] serves `/metrics` for Prometheus when `metrics_listen` is set.

pub mod agent;
pub mod assignment;
pub mod burst;
pub mod config;
pub mod demo;
pub mod dns;
pub mod enroll;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod output;
pub mod resolve;
pub mod runner;
pub mod safety;
pub mod schedule;
pub mod spool;
pub mod supervise;
#[cfg(test)]
mod testutil;
pub mod uplink;
