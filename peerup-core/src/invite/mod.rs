//! Pairing two machines: the invite code (WIRE.md §5), the handshake
//! machines (WIRE.md §6), and the relay pairing code, invite code version 2
//! (WIRE.md §13; its stream messages are [`crate::pairing::wire`]).

pub mod code;
pub mod handshake;
pub mod pairing_code;

pub use code::{DecodeError, EncodeError, InviteCode, Token};
pub use handshake::{
    Failure, InviteState, Inviter, InviterConfig, InviterEvent, InviterOutput, Joiner,
    JoinerConfig, JoinerOutput, SessionRandom,
};
pub use pairing_code::{AnyCode, PairingCode, PairingToken};
