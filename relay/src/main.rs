//! The `peerup-relay` binary (filled by issue #5).

fn main() {}
