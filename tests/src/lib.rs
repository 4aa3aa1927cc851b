//! Test harness for Meridian's end-to-end tests and benchmarks: real servers on loopback that
//! the tests start themselves (an authoritative DNS server, the scriptable origin), and helpers
//! to run the real `probe` binary. Nothing here talks to any address outside the machine, and
//! nothing uses the system resolver.
