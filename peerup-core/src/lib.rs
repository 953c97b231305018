//! # peerup-core
//!
//! The sans-IO heart of peerup: every file and wire format peerup reads or
//! writes, and (issue #3) the state machines that make its security and
//! data-safety decisions.
//!
//! Nothing in this crate performs I/O. There are no sockets, no files, no
//! clock reads, no randomness of its own and no async runtime:
//!
//! - **bytes and text come in as arguments** (`&[u8]`, `&str`); the caller
//!   reads files and sockets and names them (a file name is only used in
//!   error messages);
//! - **time comes in as an argument**: a wall-clock [`time::UnixTime`] for
//!   facts that survive a restart (an `expires=` attribute, a confirm
//!   deadline); `Instant::now` and `SystemTime::now` are banned by
//!   `clippy.toml`;
//! - **randomness comes in as an argument**: the exact bytes (a key seed, a
//!   token, a nonce);
//! - **effects go out as values** that the caller carries out (a file to
//!   replace atomically, bytes to send).
//!
//! Every parser returns a typed error naming what is wrong and where, and
//! none panics on any input (the fuzz targets of `fuzz/` and the proptests
//! beside each module hold it to that).
//!
//! ## Map
//! | module | what | spec |
//! |---|---|---|
//! | [`identity`] | identity key file codec, peer ID, the 0600 and ownership rules | WIRE.md §1, §8 |
//! | [`authorized_keys`] | the `authorized_keys` document: parse, render, edit (`attributes`, `line`, `document`) | WIRE.md §7 |
//! | [`authz`] | the authorization policy: who may connect, open which stream, pair; expiry | WIRE.md §7 |
//! | [`config`] | `peerup.yaml`, `relay-server.yaml`, field values, units, search order, archive names, comment-keeping edits, commit-confirmed apply | WIRE.md §9-§11 |
//! | [`invite`] | invite code v1, the invite handshake machines (inviter, joiner), and the relay pairing code (invite code v2, [`invite::AnyCode`] reads both) | WIRE.md §5, §6, §13 |
//! | [`pairing`] | relay pairing: the `relay-pair` request and answer, peer introductions, group IDs and HMAC proofs (`wire`); the relay's code groups (`tokens`), probation (`enroll`), introduction rules (`intro`) | WIRE.md §13, §14 |
//! | [`verify`] | the verification code of a pair of peers (emoji, number, `verified=` value) | WIRE.md §15 |
//! | [`wire`] | protocol IDs, DNS labels, sealed frames, ping-pong, the connection path (direct or relayed) | WIRE.md §2, §3, §6 |
//! | [`proxy`] | the proxy's half-close bookkeeping | - |
//! | [`relay_addr`] | the flexible `peerup relay add` input | seed README, `peerup relay` |
//! | [`reservation`] | relay reservations: dial, identify, listen, retry with backoff | ARCHITECTURE.md, relay reservations |
//! | [`lan`] | peers found on the local network (mDNS): bounded records, used only for authorized peers | ARCHITECTURE.md, LAN discovery |
//! | [`naming`] | friendly names and target resolution | WIRE.md §9 `names` |
//! | [`nat`] | NAT mapping behaviour from observed addresses (`peerup doctor`) | docs/DOCTOR.md |
//! | [`time`] | wall-clock and virtual instants as values, back-off | - |
//!
//! With the `internal-test-exports` feature (the fuzz crate and this
//! crate's integration tests turn it on; no product build does):
//!
//! | module | what |
//! |---|---|
//! | `fuzzing` | the targets of `fuzz/`, one function per parser and machine asserting its property, split by subject |
//! | `sim` | the invite handshake over a simulated link, in virtual time |
//! | `models` | the reference models that proptests and fuzz targets check machines against (one copy each) |

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod authorized_keys;
pub mod authz;
pub mod config;
#[cfg(any(test, feature = "internal-test-exports"))]
pub mod fuzzing;
pub mod identity;
pub mod invite;
pub mod lan;
#[cfg(any(test, feature = "internal-test-exports"))]
pub mod models;
pub mod naming;
pub mod nat;
pub mod pairing;
pub mod proxy;
pub mod relay_addr;
pub mod reservation;
#[cfg(any(test, feature = "internal-test-exports"))]
pub mod sim;
pub mod time;
pub mod verify;
pub mod wire;

pub use libp2p_identity::PeerId;
pub use multiaddr::{self, Multiaddr};
