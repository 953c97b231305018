//! Pairing two machines: the invite code (WIRE.md §5) and the handshake
//! machines (WIRE.md §6).

pub mod code;
pub mod handshake;

pub use code::{DecodeError, EncodeError, InviteCode, Token};
pub use handshake::{
    Failure, InviteState, Inviter, InviterConfig, InviterEvent, InviterOutput, Joiner,
    JoinerConfig, JoinerOutput, SessionRandom,
};
