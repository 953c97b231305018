//! A small YAML writer for the config renderers.
//!
//! Hand-written rather than `serde_yaml::to_string` so that rendering cannot
//! fail, the layout is stable (sections in schema order, blank lines
//! between them) and comments can be interleaved for `peerup init`. Every
//! string value is double-quoted with YAML escapes, so no text can change
//! type (`"yes"`, `"1.0"`) or break the document.

/// Double-quotes `s` for YAML: `\` and `"` escaped, and every character
/// outside YAML's printable set (or a line break) written as an escape.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_printable(c) => out.push(c),
            c => {
                let n = u32::from(c);
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02X}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// YAML's printable characters, minus the ones libyaml treats as line
/// breaks (NEL, LS, PS) and the byte-order mark.
fn is_printable(c: char) -> bool {
    matches!(u32::from(c), 0x20..=0x7e | 0xa0..=0xd7ff | 0xe000..=0xfefe | 0xff00..=0xfffd | 0x10000..=0x10ffff)
        && !matches!(c, '\u{2028}' | '\u{2029}')
}

/// A mapping key: bare when it is a plain word that YAML reads as text,
/// quoted otherwise (`"123"`, `"yes"`, `"a b"`).
pub(crate) fn key(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
        );
    if plain { s.to_owned() } else { quote(s) }
}

/// Text being written, with or without comments.
pub(crate) struct Out {
    text: String,
    comments: bool,
}

impl Out {
    pub(crate) fn new(comments: bool) -> Self {
        Out {
            text: String::new(),
            comments,
        }
    }

    /// Whether comments are written.
    pub(crate) fn comments(&self) -> bool {
        self.comments
    }

    /// One line at `indent` levels of two spaces.
    pub(crate) fn line(&mut self, indent: usize, line: &str) {
        for _ in 0..indent {
            self.text.push_str("  ");
        }
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// `key: value` (the value already rendered).
    pub(crate) fn field(&mut self, indent: usize, name: &str, value: &str) {
        self.line(indent, &format!("{name}: {value}"));
    }

    /// A comment line, written only in commented mode.
    pub(crate) fn comment(&mut self, indent: usize, text: &str) {
        if self.comments {
            if text.is_empty() {
                self.line(indent, "#");
            } else {
                self.line(indent, &format!("# {text}"));
            }
        }
    }

    /// An empty line.
    pub(crate) fn blank(&mut self) {
        self.text.push('\n');
    }

    /// `key:` followed by `- "item"` lines, or `key: []`.
    pub(crate) fn list(
        &mut self,
        indent: usize,
        name: &str,
        items: impl IntoIterator<Item = String>,
    ) {
        let items: Vec<String> = items.into_iter().collect();
        if items.is_empty() {
            self.field(indent, name, "[]");
        } else {
            self.line(indent, &format!("{name}:"));
            for item in items {
                self.line(indent + 1, &format!("- {}", quote(&item)));
            }
        }
    }

    pub(crate) fn finish(self) -> String {
        self.text
    }
}

/// `true` / `false`.
pub(crate) fn boolean(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(quote("identity.key"), "\"identity.key\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("a\nb\u{0}"), "\"a\\nb\\x00\"");
        assert_eq!(quote("\u{2028}"), "\"\\u2028\"");
        assert_eq!(quote("\u{feff}"), "\"\\uFEFF\"");
    }

    #[test]
    fn keys_quote_when_needed() {
        assert_eq!(key("home"), "home");
        assert_eq!(key("nas.garage"), "nas.garage");
        assert_eq!(key("123"), "\"123\"");
        assert_eq!(key("Yes"), "\"Yes\"");
        assert_eq!(key("a b"), "\"a b\"");
    }

    proptest! {
        #[test]
        fn quoted_strings_read_back(s in any::<String>()) {
            let back: String = serde_yaml::from_str(&format!("v: {}\n", quote(&s)))
                .map(|m: std::collections::BTreeMap<String, String>| m.get("v").cloned().unwrap_or_default())
                .unwrap();
            prop_assert_eq!(back, s);
        }

        #[test]
        fn keys_read_back(s in "[A-Za-z0-9._ -]{1,12}") {
            let m: std::collections::BTreeMap<String, u8> = serde_yaml::from_str(&format!("{}: 1\n", key(&s))).unwrap();
            prop_assert!(m.contains_key(&s));
        }
    }
}
