//! Error text for people: one line from an error and its causes; and the
//! one error every layer may meet, no randomness.

use std::error::Error;

/// The OS random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the OS random number generator failed")]
pub struct RandomError(#[source] getrandom::Error);

/// `N` bytes from the OS random number generator.
///
/// # Errors
/// [`RandomError`] when the OS has none to give.
pub fn random<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(RandomError)?;
    Ok(b)
}

/// `e` and its sources as one line, `outer: inner: innermost`, skipping a
/// source whose text the line already holds (many errors repeat their
/// source in their own message). For logs and the status text of a
/// failed dial or listen, where only a string travels; typed errors keep
/// their `source()` for callers that want the chain.
pub fn chain(e: &dyn Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let msg = inner.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("repeats: {0}")]
    struct Repeats(#[source] io::Error);

    #[test]
    fn joins_sources_and_skips_repeats() {
        let e = Outer(io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
        let e = Repeats(io::Error::other("inner"));
        assert_eq!(chain(&e), "repeats: inner");
    }
}
