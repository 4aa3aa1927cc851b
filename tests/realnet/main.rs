//! The real-network end-to-end tests (`meridian_tests::realnet`): real `coordinator` and
//! `probe` processes in network namespaces joined by a userspace WAN emulator on TUN devices,
//! real DNS servers (NSD, an Unbound resolver per region), faults injected at the packet level
//! and at the origin. Root only; as any other user every
//! test prints one `SKIP realnet: …` line and passes.
//!
//! A test binary of its own, not a module of `it`: cargo runs test binaries one after
//! another, so these timing-sensitive tests (a ±2 ms emulator validation, detection bounds in
//! 2 s intervals) never share the 2 cores with the dozens of `it` tests running in parallel.
//! Inside, the tests take turns ([`emulator::SERIAL`]).

mod dns;
mod emulator;
mod scenarios;
