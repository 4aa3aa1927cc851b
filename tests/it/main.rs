//! End-to-end tests of the probe against real servers on loopback: the scriptable origin, an
//! in-process authoritative DNS server, and the real `probe` binary. One binary, one module per
//! behaviour; the harness lives in `meridian_tests` (`tests/src`).

mod agent;
mod alert_e2e;
mod alerting;
mod architecture;
mod browser;
mod cli;
mod connect;
mod content;
mod coordinators;
mod demo;
mod deploy;
mod detection;
mod dns_checks;
mod dns_phase;
mod export;
mod maintenance;
mod metrics;
mod redirects;
mod reload;
mod timing;
mod tls;
mod transport;
mod users;
mod web;
