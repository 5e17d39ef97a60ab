//! Sessions: the per-connection task (handshake, pings, auth, request
//! intake) and the pure session tracker (tick-bucket expiry, passwords).
//!
//! The session *table* lives in the core (see [`crate::pipeline`]), because
//! creating and closing a session are replicated transactions applied in
//! zxid order; this module holds what is per connection and the pure
//! expiry structure the core drives with its clock.

pub mod connection;
pub mod tracker;
