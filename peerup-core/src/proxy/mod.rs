//! The proxy's bookkeeping (WIRE.md §4): what the copy loop of one proxied
//! connection must do next, decided without I/O.

pub mod half_close;

pub use half_close::{Direction, HalfClose, HalfCloseOutput, Side, UsageError};
