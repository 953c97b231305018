//! Relay pairing (WIRE.md §13-§14): one-time codes the relay operator
//! hands out, strangers on probation while they are open, and the
//! introductions that make the machines of one group know each other.
//!
//! | module | what |
//! |---|---|
//! | [`tokens`] | the relay's groups of codes: single use, burned after 3 failures, TTL, revoke, constant-time compare |
//! | [`enroll`] | strangers on probation while codes are open: at most 10, 15 s each, strikes |
//! | [`intro`] | whom a node adds from a pairing answer or an introduction, and the relay's re-send window |

pub mod enroll;
pub mod intro;
pub mod tokens;
