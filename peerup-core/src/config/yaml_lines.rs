//! The line scanner shared by the locator of [`diag`](super::diag) and
//! the comment-keeping editor of [`edit`](super::edit): block-style YAML
//! read line by line.
//!
//! - [`lines`] splits a text into [`Line`]s, each with its body, its line
//!   end (`\n`, `\r\n`, or nothing on a last line without one) and its
//!   byte offset; the bodies are those of [`str::lines`], and the
//!   concatenation of body and line end of every line is the text.
//! - [`indent`] is the indentation of a body, in spaces (a tab is not
//!   indentation in YAML).
//! - [`split_key`] reads `key: value` (plain, `"double"` or `'single'`
//!   quoted key).
//!
//! Each module keeps its own rules on top (what counts as a comment line,
//! a list item, a document marker), as they did before the scanner was
//! shared: the locator is best effort and never fails, the editor refuses
//! what it does not understand.

/// One line: its text without the line end, and the line end (`\n`,
/// `\r\n`, or nothing on a last line without one).
pub(super) struct Line<'a> {
    pub(super) body: &'a str,
    pub(super) eol: &'a str,
    /// Byte offset of the line in the text.
    pub(super) start: usize,
}

/// Splits `text` into lines, keeping each line end.
pub(super) fn lines(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut start = 0;
    for piece in text.split_inclusive('\n') {
        let (body, eol) = if let Some(b) = piece.strip_suffix("\r\n") {
            (b, "\r\n")
        } else if let Some(b) = piece.strip_suffix('\n') {
            (b, "\n")
        } else {
            (piece, "")
        };
        lines.push(Line { body, eol, start });
        start += piece.len();
    }
    lines
}

/// The indentation of `body`: its leading spaces.
pub(super) fn indent(body: &str) -> usize {
    body.len() - body.trim_start_matches(' ').len()
}

/// Splits `key: value` (the key plain, `"double"` or `'single'` quoted).
///
/// The value is a suffix of `rest` (the editor relies on that to find the
/// colon's byte offset).
pub(super) fn split_key(rest: &str) -> Option<(String, &str)> {
    let colon_after = |after: &str| -> Option<usize> {
        let trimmed = after.trim_start_matches(' ');
        let skipped = after.len() - trimmed.len();
        let tail = trimmed.strip_prefix(':')?;
        (tail.is_empty() || tail.starts_with([' ', '\t'])).then_some(skipped + 1)
    };
    if let Some(body) = rest.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        key.push(e);
                    }
                }
                '"' => {
                    let after = &body[i + 1..];
                    let n = colon_after(after)?;
                    return Some((key, &after[n..]));
                }
                c => key.push(c),
            }
        }
        return None;
    }
    if let Some(body) = rest.strip_prefix('\'') {
        let mut key = String::new();
        let mut i = 0;
        let bytes = body.as_bytes();
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                if bytes.get(i + 1) == Some(&b'\'') {
                    key.push('\'');
                    i += 2;
                    continue;
                }
                let after = &body[i + 1..];
                let n = colon_after(after)?;
                return Some((key, &after[n..]));
            }
            let c = body[i..].chars().next()?;
            key.push(c);
            i += c.len_utf8();
        }
        return None;
    }
    if rest.starts_with([
        '[', '{', '!', '&', '*', '|', '>', '%', '@', '`', '?', ',', '#',
    ]) {
        return None;
    }
    let bytes = rest.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && i > 0 && bytes[i - 1] == b' ' {
            return None;
        }
        if b == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ' || bytes[i + 1] == b'\t') {
            let key = rest[..i].trim_end();
            if key.is_empty() {
                return None;
            }
            return Some((key.to_owned(), &rest[i + 1..]));
        }
    }
    None
}
