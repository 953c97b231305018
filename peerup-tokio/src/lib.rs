//! peerup-tokio: the tokio adapter (filled by issue #4).
