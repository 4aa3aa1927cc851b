//! End-to-end tests of the probe against real servers on loopback.
