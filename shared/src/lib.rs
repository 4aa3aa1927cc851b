//! Meridian's shared vocabulary, used by the probe and the coordinator alike.
//!
//! - [`config`]: strict TOML reading with `file:line:column: field: message` errors.
//! - [`identity`]: a probe's identity and region as its certificate's SAN URI carries them.
//! - [`regions`]: the region catalog (`regions.toml`) and its validation.
//! - [`check`]: what a check is (HTTP and DNS specs) and how it is written in TOML.
//! - [`result`]: what a check produced, the record that travels to the coordinator.
//! - [`wire`]: the probe↔coordinator protocol: messages, length-prefixed MessagePack frames,
//!   version negotiation and the ingest checks, on byte buffers (the streams live elsewhere).
//!
//! Deliberately absent: sockets, an async runtime, clocks. Everything here is data and pure
//! functions over it, so both sides and the simulator agree on meaning.

pub mod check;
pub mod config;
pub mod identity;
pub mod regions;
pub mod result;
pub mod wire;
