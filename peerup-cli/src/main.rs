//! The `peerup` command line (filled by issue #6).

fn main() {}
