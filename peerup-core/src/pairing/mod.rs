//! Relay pairing (WIRE.md §13, §14): a relay operator's group of one-time
//! codes, each machine joining with one, strangers on probation while
//! codes are open, and the relay introducing the members to each other.
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | the `relay-pair` request and answer, peer introductions, group IDs, HMAC group proofs |
//! | [`tokens`] | the relay's groups of codes: single use, burned after 3 failures, TTL, revoke, constant-time compare |
//! | [`enroll`] | strangers on probation while codes are open: at most 10, 15 s each, strikes |
//! | [`intro`] | whom a node adds from a pairing answer or an introduction, and the relay's re-send window |
//!
//! The pairing code itself (invite code version 2) is
//! [`crate::invite::pairing_code`]; the verification code people compare
//! afterwards is [`crate::verify`].

pub mod enroll;
pub mod intro;
pub mod tokens;
pub mod wire;
