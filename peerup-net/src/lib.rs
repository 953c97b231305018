//! peerup-net: the runtime-agnostic libp2p binding (filled by issue #4).
