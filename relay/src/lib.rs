//! peerup-relay: the relay server library (filled by issue #5).
