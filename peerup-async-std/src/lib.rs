//! peerup-async-std: the async-std adapter (filled by issue #9).
