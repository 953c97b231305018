//! Relay pairing (WIRE.md §13, §14): a relay operator's group of one-time
//! codes, each machine joining with one, the relay introducing the members
//! to each other.
//!
//! The pairing code itself (invite code version 2) is
//! [`crate::invite::pairing_code`]; the verification code people compare
//! afterwards is [`crate::verify`].

pub mod wire;
