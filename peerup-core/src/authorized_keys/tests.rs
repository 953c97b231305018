//! Unit tests and proptests of the `authorized_keys` document.

use super::attributes::{distance, is_unsafe_char};
use super::*;
use crate::PeerId;
use crate::time::UnixTime;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::OnceLock;

const A: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
const B: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

fn a() -> PeerId {
    A.parse().unwrap()
}

fn b() -> PeerId {
    B.parse().unwrap()
}

/// Deterministic peer IDs for proptests.
fn pool() -> &'static [PeerId] {
    static POOL: OnceLock<Vec<PeerId>> = OnceLock::new();
    POOL.get_or_init(|| {
        (1..=24u8)
            .map(|seed| {
                libp2p_identity::Keypair::ed25519_from_bytes([seed; 32])
                    .unwrap()
                    .public()
                    .to_peer_id()
            })
            .collect()
    })
}

fn t(text: &str) -> UnixTime {
    UnixTime::parse_rfc3339(text).unwrap()
}

fn errors(text: &str) -> Vec<LineError> {
    Document::parse(text).errors().cloned().collect()
}

fn only_error(text: &str) -> LineError {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    errs.into_iter().next().unwrap()
}

// ---- parsing -------------------------------------------------------

/// `expire=` (a typo) used to be kept as an unknown attribute, leaving
/// the peer authorized forever.
#[test]
fn a_misspelled_expires_invalidates_the_line() {
    for key in [
        "expire",
        "expiry",
        "expries",
        "exipres",
        "expiration",
        "Expires",
    ] {
        let doc = Document::parse(&format!("{A}  {key}=2000-01-01T00:00:00Z\n"));
        assert!(!doc.is_authorized(&a(), UnixTime::from_secs(0)), "{key}");
        assert_eq!(doc.errors().count(), 1, "{key}");
    }
    // Other unknown keys are kept.
    let doc = Document::parse(&format!("{A}  owner=me  x=1\n"));
    assert!(doc.is_authorized(&a(), UnixTime::from_secs(0)));
    assert_eq!(distance("expires", "expires"), 0);
    assert_eq!(distance("expire", "expires"), 1);
    assert_eq!(distance("", "abc"), 3);
}

/// A 2 MB token took over 100 s to decode as base58 (quadratic); it is
/// now refused on its length, and quoted shortened.
#[test]
fn a_huge_token_is_an_invalid_line_quoted_short() {
    let text = format!("{A}\n{}\n", "1".repeat(2_000_000));
    let doc = Document::parse(&text);
    assert_eq!(doc.entries().count(), 1);
    let errs: Vec<_> = doc.errors().collect();
    assert_eq!(errs.len(), 1);
    let msg = errs[0].to_string();
    assert!(msg.len() < 200, "{}", &msg[..200.min(msg.len())]);
    assert!(msg.contains("... (2000000 bytes)"), "{msg}");
    assert_eq!(doc.render(), text);
}

#[test]
fn parses_go_sample_with_two_space_comment() {
    let text = format!(
        "# File: authorized_keys\n# Format: <peer_id> # optional comment\n{A}  # my-laptop\n{B}  # my-phone\n"
    );
    let doc = Document::parse_strict(&text).unwrap();
    let entries: Vec<_> = doc.entries().collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].peer(), a());
    assert_eq!(entries[0].line(), 3);
    assert_eq!(entries[0].comment(), Some("my-laptop"));
    assert!(entries[0].attributes().is_empty());
    assert_eq!(entries[1].peer(), b());
    assert_eq!(entries[1].line(), 4);
    assert_eq!(entries[1].comment(), Some("my-phone"));
    assert_eq!(doc.render(), text);
    assert_eq!(entries[0].to_line(), format!("{A}  # my-laptop"));
}

#[test]
fn classifies_blank_comment_entry_and_invalid_lines() {
    let text = format!("\n   \t\n  # note\n{A}\nnot-a-peer\n");
    let doc = Document::parse(&text);
    let kinds: Vec<_> = doc.lines().iter().map(Line::kind).collect();
    assert_eq!(kinds[0], &LineKind::Blank);
    assert_eq!(kinds[1], &LineKind::Blank);
    assert_eq!(kinds[2], &LineKind::Comment);
    assert!(matches!(kinds[3], LineKind::Entry(e) if e.peer() == a() && e.line() == 4));
    assert!(matches!(kinds[4], LineKind::Invalid { peer: None, error } if error.line() == 5));
    assert_eq!(doc.lines()[1].text(), "   \t");
    assert_eq!(
        doc.lines().iter().map(Line::number).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(doc.len(), 1);
    assert!(!doc.is_valid());
}

#[test]
fn first_hash_starts_the_comment_and_comment_is_trimmed() {
    let doc = Document::parse(&format!("  {A}#  one # two  \t\n{B} group=x #\n"));
    let e = doc.get(&a()).unwrap();
    assert_eq!(e.comment(), Some("one # two"));
    assert!(e.attributes().is_empty());
    let e = doc.get(&b()).unwrap();
    assert_eq!(e.comment(), None, "an empty comment is no comment");
    assert_eq!(e.attributes().group(), Some("x"));
}

#[test]
fn parses_known_attributes() {
    let text = format!(
        "{A} hmac_proof=abc= group=home verified=sha256:0a1B2c3D expires=2026-12-31T23:59:59Z # x\n"
    );
    let doc = Document::parse_strict(&text).unwrap();
    let attrs = doc.get(&a()).unwrap().attributes();
    assert_eq!(attrs.expires(), Some(t("2026-12-31T23:59:59Z")));
    assert_eq!(attrs.expires_text(), Some("2026-12-31T23:59:59Z"));
    assert_eq!(attrs.verified(), Some("sha256:0a1B2c3D"));
    assert_eq!(attrs.group(), Some("home"));
    assert_eq!(attrs.hmac_proof(), Some("abc="));
    assert_eq!(attrs.len(), 4);
    let order: Vec<_> = attrs.iter().map(|(k, _)| k).collect();
    assert_eq!(order, [EXPIRES, VERIFIED, GROUP, HMAC_PROOF]);
}

#[test]
fn keeps_unknown_attributes_in_order() {
    let doc = Document::parse(&format!("{A} zeta=1 group=g alpha=2 mid-key_3=a=b\n"));
    let attrs = doc.get(&a()).unwrap().attributes();
    let unknown: Vec<_> = attrs.unknown().collect();
    assert_eq!(
        unknown,
        [("zeta", "1"), ("alpha", "2"), ("mid-key_3", "a=b")]
    );
    assert_eq!(attrs.get("alpha"), Some("2"));
    assert_eq!(attrs.get("nope"), None);
}

#[test]
fn expires_with_offset_and_fraction_keeps_text() {
    let doc = Document::parse(&format!("{A} expires=2026-01-31T13:00:00.5+01:00\n"));
    let e = doc.get(&a()).unwrap();
    assert_eq!(e.expires(), Some(t("2026-01-31T12:00:00.5Z")));
    assert_eq!(
        e.attributes().expires_text(),
        Some("2026-01-31T13:00:00.5+01:00")
    );
}

#[test]
fn rejects_invalid_peer_id_quoting_it() {
    let err = only_error(&format!("{A}\n# c\n12D3Koo # short\n"));
    assert_eq!(
        err,
        LineError::InvalidPeerId {
            line: 3,
            text: "12D3Koo".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "line 3: \"12D3Koo\" is not a valid peer ID (expected base58 like 12D3KooW...)"
    );
}

#[test]
fn invalid_peer_id_quote_shows_invisible_characters() {
    let err = only_error(&format!("\u{feff}{A}\n"));
    assert_eq!(err.line(), 1);
    assert!(err.to_string().contains("\\u{feff}12D3KooW"), "{err}");
}

#[test]
fn rejects_attribute_without_equals() {
    let err = only_error(&format!("\n{A} my-laptop\n"));
    assert_eq!(
        err,
        LineError::MissingEquals {
            line: 2,
            token: "my-laptop".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "line 2: \"my-laptop\" is not a key=value attribute (like group=home); comments go after '#'"
    );
}

#[test]
fn rejects_empty_key_and_empty_value() {
    let err = only_error(&format!("{A} =x\n"));
    assert_eq!(
        err,
        LineError::Attribute {
            line: 1,
            error: AttributeError::EmptyKey { value: "x".into() }
        }
    );
    assert_eq!(
        err.to_string(),
        "line 1: attribute \"=x\" has no key (expected key=value, like group=home)"
    );
    let err = only_error(&format!("{A}\n{B} group=\n"));
    assert_eq!(
        err,
        LineError::Attribute {
            line: 2,
            error: AttributeError::EmptyValue {
                key: "group".into()
            }
        }
    );
    assert_eq!(
        err.to_string(),
        "line 2: attribute \"group\" has an empty value (expected group=value)"
    );
}

#[test]
fn rejects_invalid_key() {
    let err = only_error(&format!("{A} Expires=2026-12-31T23:59:59Z\n"));
    assert_eq!(
        err,
        LineError::Attribute {
            line: 1,
            error: AttributeError::InvalidKey {
                key: "Expires".into()
            }
        }
    );
    assert_eq!(
        err.to_string(),
        "line 1: attribute key \"Expires\" may only use lowercase letters, digits, '_' and '-'"
    );
}

#[test]
fn rejects_invalid_expires_naming_rfc3339() {
    let err = only_error(&format!("{A}\n\n{B}  expires=2026-12-31  # phone\n"));
    assert_eq!(
        err,
        LineError::Attribute {
            line: 3,
            error: AttributeError::InvalidExpires {
                value: "2026-12-31".into()
            }
        }
    );
    assert_eq!(
        err.to_string(),
        "line 3: expires=\"2026-12-31\" is not an RFC 3339 time (like 2026-12-31T23:59:59Z)"
    );
}

#[test]
fn verified_is_sha256_and_eight_hex_digits() {
    for good in ["sha256:0123abcd", "sha256:ABCDEF09", "sha256:aBcD1234"] {
        let doc = Document::parse_strict(&format!("{A} verified={good}\n")).unwrap();
        assert_eq!(doc.get(&a()).unwrap().attributes().verified(), Some(good));
    }
    for bad in [
        "sha256:0123abc",
        "sha256:0123abcde",
        "sha256:0123abcg",
        "0123abcd",
        "SHA256:0123abcd",
        "sha1:0123abcd",
    ] {
        let err = only_error(&format!("{A} verified={bad}\n"));
        assert_eq!(
            err,
            LineError::Attribute {
                line: 1,
                error: AttributeError::InvalidVerified { value: bad.into() }
            }
        );
    }
    assert_eq!(
        only_error(&format!("{A} verified=x\n")).to_string(),
        "line 1: verified=\"x\" is not sha256: followed by 8 hex digits (like sha256:1a2b3c4d)"
    );
}

#[test]
fn rejects_value_with_control_or_unicode_space() {
    for bad in ["a\u{0}b", "a\u{a0}b", "a\u{202e}b", "a\u{b}b"] {
        let err = only_error(&format!("{A} group={bad}\n"));
        assert_eq!(
            err,
            LineError::Attribute {
                line: 1,
                error: AttributeError::InvalidValue {
                    key: "group".into(),
                    value: bad.into()
                }
            }
        );
    }
}

#[test]
fn rejects_duplicate_attribute() {
    let err = only_error(&format!("{A} group=a foo=1 group=b\n"));
    assert_eq!(
        err,
        LineError::DuplicateAttribute {
            line: 1,
            key: "group".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "line 1: attribute \"group\" appears more than once"
    );
    let err = only_error(&format!("{A} foo=1 foo=1\n"));
    assert_eq!(
        err,
        LineError::DuplicateAttribute {
            line: 1,
            key: "foo".into()
        }
    );
}

#[test]
fn rejects_duplicate_peer_naming_first_line() {
    let text = format!("# c\n{A}  # one\n{B}\n\n{A}  # two\n");
    let err = only_error(&text);
    assert_eq!(
        err,
        LineError::DuplicatePeer {
            line: 5,
            peer: a(),
            first_line: 2
        }
    );
    assert_eq!(
        err.to_string(),
        format!("line 5: peer {A} is already listed on line 2")
    );
    // a first listing that is itself invalid still counts
    let err = errors(&format!("{A} bad\n{A}\n"));
    assert_eq!(
        err[1],
        LineError::DuplicatePeer {
            line: 2,
            peer: a(),
            first_line: 1
        }
    );
}

#[test]
fn parse_strict_returns_every_bad_line() {
    let text = format!("{A}\nfoo\n{B} x\n# ok\n{A}\n");
    let err = Document::parse_strict(&text).unwrap_err();
    let lines: Vec<_> = err.errors().iter().map(LineError::line).collect();
    assert_eq!(lines, [2, 3, 5]);
    assert!(
        err.to_string()
            .starts_with("3 invalid lines: line 2: \"foo\""),
        "{err}"
    );
    let one = Document::parse_strict("foo").unwrap_err();
    assert_eq!(
        one.to_string(),
        "1 invalid line: line 1: \"foo\" is not a valid peer ID (expected base58 like 12D3KooW...)"
    );
    assert_eq!(one.into_errors().len(), 1);
    assert!(Document::parse_strict("").unwrap().is_empty());
}

#[test]
fn render_is_exact_for_crlf_mixed_and_no_trailing_newline() {
    for text in [
        "",
        "\n",
        "\r\n",
        "\r",
        "a\rb",
        "x\r\n\r\ny\nz",
        &format!("{A}  # x\r\n# c\r\n{B}"),
        &format!("  {A}\t\t# odd   spacing  \n\n\n"),
    ] {
        assert_eq!(Document::parse(text).render(), text);
    }
    let doc = Document::parse("a\r\nb\nc");
    let endings: Vec<_> = doc.lines().iter().map(Line::ending).collect();
    assert_eq!(
        endings,
        [LineEnding::CrLf, LineEnding::Lf, LineEnding::Missing]
    );
    assert_eq!(doc.lines()[0].text(), "a");
    assert_eq!(Document::parse("\n").lines().len(), 1);
    assert_eq!(Document::parse("").lines().len(), 0);
}

// ---- authorization -----------------------------------------------

#[test]
fn expires_boundary_is_exclusive() {
    let doc = Document::parse(&format!("{A} expires=2026-12-31T23:59:59Z\n{B}\n"));
    let at = t("2026-12-31T23:59:59Z");
    let before = UnixTime::from_millis(at.as_millis() - 1);
    assert!(doc.is_authorized(&a(), before));
    assert_eq!(doc.status(&a(), before), Status::Authorized);
    assert!(
        !doc.is_authorized(&a(), at),
        "at now == expires the entry has expired"
    );
    assert_eq!(doc.status(&a(), at), Status::Expired { at });
    assert!(!doc.is_authorized(&a(), UnixTime::from_millis(at.as_millis() + 1)));
    assert!(doc.get(&a()).unwrap().is_expired(at));
    assert!(!doc.get(&a()).unwrap().is_expired(before));
    assert!(doc.is_authorized(&b(), at), "no expires never expires");
    assert_eq!(doc.authorized_peers(before), BTreeSet::from([a(), b()]));
    assert_eq!(doc.authorized_peers(at), BTreeSet::from([b()]));
    let expired: Vec<_> = doc.expired(at).map(Entry::peer).collect();
    assert_eq!(expired, [a()]);
    assert_eq!(doc.expired(before).count(), 0);
    assert!(doc.contains(&a()), "an expired entry is still contained");
}

#[test]
fn invalid_lines_never_authorize() {
    let now = t("2026-01-01T00:00:00Z");
    let doc = Document::parse(&format!("{A} expires=tomorrow\n{B} verified=nope\n"));
    assert!(!doc.is_authorized(&a(), now));
    assert!(!doc.is_authorized(&b(), now));
    assert_eq!(doc.status(&a(), now), Status::Invalid { line: 1 });
    assert!(doc.authorized_peers(now).is_empty());
    assert!(!doc.contains(&a()));
    assert!(doc.get(&a()).is_none());
}

#[test]
fn a_peer_with_an_invalid_duplicate_is_denied() {
    // The second line tries to restrict the peer; the file is ambiguous.
    let now = t("2026-01-01T00:00:00Z");
    let doc = Document::parse(&format!("{A}\n{A} expires=2025-01-01T00:00:00Z\n{B}\n"));
    assert!(doc.contains(&a()));
    assert_eq!(doc.status(&a(), now), Status::Invalid { line: 2 });
    assert!(!doc.is_authorized(&a(), now));
    assert_eq!(doc.authorized_peers(now), BTreeSet::from([b()]));
}

#[test]
fn unlisted_peer_is_not_authorized() {
    let doc = Document::parse(&format!("{A}\n"));
    assert_eq!(doc.status(&b(), UnixTime::EPOCH), Status::NotListed);
    assert!(!doc.is_authorized(&b(), UnixTime::EPOCH));
    assert!(!Document::new().is_authorized(&a(), UnixTime::EPOCH));
}

// ---- edits -------------------------------------------------------

const MESSY: &str = "# header  \n\n  # indented comment\r\nnot-a-peer  # bad\n";

#[test]
fn add_appends_canonical_line_and_keeps_the_rest() {
    let mut doc = Document::parse(MESSY);
    let attrs = Attributes::new()
        .with("group", "home")
        .unwrap()
        .with_expires(t("2026-12-31T23:59:59Z"))
        .with("zz", "1")
        .unwrap();
    doc.add(a(), attrs, Some("  my-laptop ")).unwrap();
    assert_eq!(
        doc.render(),
        format!("{MESSY}{A}  expires=2026-12-31T23:59:59Z  group=home  zz=1  # my-laptop\n")
    );
    assert_eq!(doc.get(&a()).unwrap().line(), 5);
    doc.add(b(), Attributes::new(), None).unwrap();
    assert!(doc.render().ends_with(&format!("# my-laptop\n{B}\n")));
}

#[test]
fn add_to_file_without_trailing_newline_terminates_last_line() {
    let mut doc = Document::parse(&format!("# c\n{A}  # x"));
    doc.add(b(), Attributes::new(), Some("phone")).unwrap();
    assert_eq!(doc.render(), format!("# c\n{A}  # x\n{B}  # phone\n"));
    assert!(doc.is_valid());
    let mut doc = Document::parse("# only a comment");
    doc.add(a(), Attributes::new(), None).unwrap();
    assert_eq!(doc.render(), format!("# only a comment\n{A}\n"));
}

#[test]
fn add_uses_crlf_in_a_crlf_file() {
    let mut doc = Document::parse(&format!("# c\r\n{A}"));
    doc.add(b(), Attributes::new(), None).unwrap();
    assert_eq!(doc.render(), format!("# c\r\n{A}\r\n{B}\r\n"));
    let mut doc = Document::new();
    doc.add(a(), Attributes::new(), None).unwrap();
    assert_eq!(doc.render(), format!("{A}\n"));
}

#[test]
fn add_refuses_a_peer_already_present_even_on_an_invalid_line() {
    let text = format!("{A}\n{B} broken\n");
    let mut doc = Document::parse(&text);
    assert_eq!(
        doc.add(a(), Attributes::new(), None),
        Err(EditError::AlreadyPresent { peer: a(), line: 1 })
    );
    assert_eq!(
        doc.add(b(), Attributes::new(), None),
        Err(EditError::AlreadyPresent { peer: b(), line: 2 })
    );
    assert_eq!(doc.render(), text);
    assert_eq!(
        EditError::AlreadyPresent { peer: a(), line: 1 }.to_string(),
        format!("peer {A} is already in authorized_keys (line 1)")
    );
}

#[test]
fn add_refuses_a_comment_that_would_inject_a_line() {
    let mut doc = Document::parse("# c\n");
    for bad in [
        format!("x\n{B}"),
        format!("x\r{B}"),
        "a\u{85}b".into(),
        "a\u{2028}b".into(),
        "a\u{202e}b".into(),
    ] {
        let err = doc.add(a(), Attributes::new(), Some(&bad)).unwrap_err();
        assert_eq!(
            err,
            EditError::Comment(CommentError {
                comment: bad.clone()
            })
        );
    }
    assert_eq!(doc.render(), "# c\n");
    assert!(render_entry(&a(), &Attributes::new(), Some("tab\tok")).is_ok());
    assert!(render_entry(&a(), &Attributes::new(), Some("bell\u{7}")).is_err());
}

#[test]
fn remove_returns_entry_and_keeps_other_lines() {
    let text = format!("# keep\r\n{A}  # laptop\n  \n{B} unknown\n");
    let mut doc = Document::parse(&text);
    let removed = doc.remove(&a()).unwrap();
    assert_eq!(removed.entry().unwrap().comment(), Some("laptop"));
    assert_eq!(removed.lines().len(), 1);
    assert_eq!(removed.lines()[0].number(), 2);
    assert_eq!(doc.render(), format!("# keep\r\n  \n{B} unknown\n"));
    // line numbers follow the new text
    assert_eq!(doc.errors().next().unwrap().line(), 3);
    assert_eq!(doc.remove(&a()), Err(EditError::NotFound { peer: a() }));
    assert_eq!(
        EditError::NotFound { peer: a() }.to_string(),
        format!("peer {A} is not in authorized_keys")
    );
}

#[test]
fn remove_takes_duplicates_so_the_peer_cannot_resurface() {
    let mut doc = Document::parse(&format!("{A}\n# c\n{A} # dup\n{B}"));
    let removed = doc.remove(&a()).unwrap();
    assert_eq!(
        removed.lines().iter().map(Line::number).collect::<Vec<_>>(),
        [1, 3]
    );
    assert_eq!(doc.render(), format!("# c\n{B}"));
    assert!(!doc.contains(&a()));
    // an invalid-only peer can be removed too
    let mut doc = Document::parse(&format!("{A} expires=bad\n"));
    let removed = doc.remove(&a()).unwrap();
    assert!(removed.entry().is_none());
    assert_eq!(doc.render(), "");
}

#[test]
fn remove_last_line_without_newline_keeps_previous_line() {
    let mut doc = Document::parse(&format!("# c\n{A}"));
    doc.remove(&a()).unwrap();
    assert_eq!(doc.render(), "# c\n");
}

#[test]
fn set_attribute_rewrites_only_that_line_canonically() {
    let text = format!(
        "# top\r\n{A}   zz=9 group=old    expires=2027-01-01T00:00:00+02:00 #  laptop \r\n\nnot-a-peer\n{B} x=1\n"
    );
    let mut doc = Document::parse(&text);
    let previous = doc
        .set_attribute(&a(), "verified", "sha256:deadBEEF")
        .unwrap();
    assert_eq!(previous, None);
    assert_eq!(
        doc.render(),
        format!(
            "# top\r\n{A}  expires=2027-01-01T00:00:00+02:00  verified=sha256:deadBEEF  group=old  zz=9  # laptop\r\n\nnot-a-peer\n{B} x=1\n"
        )
    );
    assert_eq!(
        doc.set_attribute(&a(), "group", "new").unwrap().as_deref(),
        Some("old")
    );
    assert_eq!(doc.get(&a()).unwrap().attributes().group(), Some("new"));
    assert_eq!(doc.set_attribute(&a(), "new-key", "v").unwrap(), None);
    assert!(doc.render().contains("zz=9  new-key=v  # laptop\r\n"));
}

#[test]
fn set_attribute_with_unchanged_value_keeps_line_bytes() {
    let text = format!("{A}    group=g\t# c\n");
    let mut doc = Document::parse(&text);
    assert_eq!(
        doc.set_attribute(&a(), "group", "g").unwrap().as_deref(),
        Some("g")
    );
    assert_eq!(doc.remove_attribute(&a(), "nope").unwrap(), None);
    assert_eq!(
        doc.set_comment(&a(), Some(" c ")).unwrap().as_deref(),
        Some("c")
    );
    assert_eq!(doc.render(), text);
}

#[test]
fn set_attribute_validates_like_the_parser() {
    let text = format!("{A}\n");
    let mut doc = Document::parse(&text);
    let cases = [
        ("", "x", AttributeError::EmptyKey { value: "x".into() }),
        (
            "Group",
            "x",
            AttributeError::InvalidKey {
                key: "Group".into(),
            },
        ),
        ("a b", "x", AttributeError::InvalidKey { key: "a b".into() }),
        (
            "group",
            "",
            AttributeError::EmptyValue {
                key: "group".into(),
            },
        ),
        (
            "group",
            "a b",
            AttributeError::InvalidValue {
                key: "group".into(),
                value: "a b".into(),
            },
        ),
        (
            "group",
            "a#b",
            AttributeError::InvalidValue {
                key: "group".into(),
                value: "a#b".into(),
            },
        ),
        (
            "group",
            "a\nb",
            AttributeError::InvalidValue {
                key: "group".into(),
                value: "a\nb".into(),
            },
        ),
        (
            "expires",
            "soon",
            AttributeError::InvalidExpires {
                value: "soon".into(),
            },
        ),
        (
            "verified",
            "sha256:1",
            AttributeError::InvalidVerified {
                value: "sha256:1".into(),
            },
        ),
    ];
    for (key, value, expected) in cases {
        assert_eq!(
            doc.set_attribute(&a(), key, value),
            Err(EditError::Attribute(expected))
        );
    }
    assert_eq!(doc.render(), text);
}

#[test]
fn edits_of_missing_or_invalid_peers_are_refused() {
    let text = format!("{A} group=a group=b\n");
    let mut doc = Document::parse(&text);
    let dup = LineError::DuplicateAttribute {
        line: 1,
        key: "group".into(),
    };
    assert_eq!(
        doc.set_attribute(&a(), "group", "c"),
        Err(EditError::InvalidLine {
            peer: a(),
            error: Box::new(dup.clone())
        })
    );
    assert_eq!(
        doc.set_comment(&a(), Some("x")),
        Err(EditError::InvalidLine {
            peer: a(),
            error: Box::new(dup)
        })
    );
    assert_eq!(
        doc.set_expires(&b(), UnixTime::EPOCH),
        Err(EditError::NotFound { peer: b() })
    );
    assert_eq!(
        doc.remove_attribute(&b(), "group"),
        Err(EditError::NotFound { peer: b() })
    );
    assert_eq!(doc.render(), text);
    assert_eq!(
        doc.set_attribute(&a(), "group", "c")
            .unwrap_err()
            .to_string(),
        format!(
            "peer {A} cannot be edited: line 1: attribute \"group\" appears more than once; fix or remove that line first"
        )
    );
}

#[test]
fn editing_the_valid_line_of_a_duplicated_peer_keeps_the_duplicate_invalid() {
    let mut doc = Document::parse(&format!("{A}\n{A}\n"));
    doc.set_comment(&a(), Some("first")).unwrap();
    assert_eq!(doc.render(), format!("{A}  # first\n{A}\n"));
    assert_eq!(
        doc.status(&a(), UnixTime::EPOCH),
        Status::Invalid { line: 2 }
    );
}

#[test]
fn set_expires_writes_rfc3339_and_keeps_equal_text() {
    let text = format!("{A} expires=2026-12-31T23:59:59+00:00 group=g\n");
    let mut doc = Document::parse(&text);
    let same = t("2026-12-31T23:59:59Z");
    assert_eq!(doc.set_expires(&a(), same).unwrap(), Some(same));
    assert_eq!(doc.render(), text, "same instant: original text kept");
    let later = UnixTime::from_millis(same.as_millis() + 1500);
    assert_eq!(doc.set_expires(&a(), later).unwrap(), Some(same));
    assert_eq!(
        doc.render(),
        format!("{A}  expires=2027-01-01T00:00:00.500Z  group=g\n")
    );
    assert_eq!(doc.get(&a()).unwrap().expires(), Some(later));
}

#[test]
fn set_expires_clamps_to_what_rfc3339_can_write() {
    let mut doc = Document::parse(&format!("{A}\n"));
    for at in [
        UnixTime::from_millis(i64::MAX),
        UnixTime::from_millis(i64::MIN),
    ] {
        doc.set_expires(&a(), at).unwrap();
        assert!(doc.is_valid(), "{}", doc.render());
        let attrs = Attributes::new().with_expires(at);
        let written = UnixTime::parse_rfc3339(attrs.expires_text().unwrap()).unwrap();
        assert_eq!(attrs.expires(), Some(written));
        assert_eq!(doc.get(&a()).unwrap().expires(), Some(written));
    }
}

#[test]
fn editing_another_attribute_keeps_original_expires_text() {
    let mut doc = Document::parse(&format!("{A} expires=2026-12-31T23:59:59.000+00:00\n"));
    doc.set_attribute(&a(), "group", "g").unwrap();
    assert_eq!(
        doc.render(),
        format!("{A}  expires=2026-12-31T23:59:59.000+00:00  group=g\n")
    );
}

#[test]
fn remove_attribute_and_set_comment() {
    let mut doc = Document::parse(&format!("{A} group=g foo=1 # old\n"));
    assert_eq!(
        doc.remove_attribute(&a(), "group").unwrap().as_deref(),
        Some("g")
    );
    assert_eq!(doc.render(), format!("{A}  foo=1  # old\n"));
    assert_eq!(
        doc.set_comment(&a(), Some("new # with hash"))
            .unwrap()
            .as_deref(),
        Some("old")
    );
    assert_eq!(doc.render(), format!("{A}  foo=1  # new # with hash\n"));
    assert_eq!(doc.get(&a()).unwrap().comment(), Some("new # with hash"));
    assert_eq!(
        doc.set_comment(&a(), Some("  ")).unwrap().as_deref(),
        Some("new # with hash")
    );
    assert_eq!(doc.render(), format!("{A}  foo=1\n"));
    assert_eq!(
        doc.set_comment(&a(), Some("x\ny")),
        Err(EditError::Comment(CommentError {
            comment: "x\ny".into()
        }))
    );
    assert_eq!(
        doc.remove_attribute(&a(), "foo").unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(doc.render(), format!("{A}\n"));
}

#[test]
fn attributes_builder_and_canonical_render() {
    let attrs = Attributes::new()
        .with("x-extra", "1")
        .unwrap()
        .with("hmac_proof", "p")
        .unwrap()
        .with("group", "g")
        .unwrap()
        .with("verified", "sha256:00000000")
        .unwrap()
        .with("expires", "2030-01-01T00:00:00Z")
        .unwrap();
    assert_eq!(
        render_entry(&a(), &attrs, Some("c")).unwrap(),
        format!(
            "{A}  expires=2030-01-01T00:00:00Z  verified=sha256:00000000  group=g  hmac_proof=p  x-extra=1  # c"
        )
    );
    assert_eq!(render_entry(&a(), &Attributes::new(), Some("")).unwrap(), A);
    let mut attrs = attrs;
    assert_eq!(
        attrs.remove("expires").as_deref(),
        Some("2030-01-01T00:00:00Z")
    );
    assert_eq!(attrs.remove("x-extra").as_deref(), Some("1"));
    assert_eq!(attrs.remove("x-extra"), None);
    assert_eq!(attrs.len(), 3);
    assert!(Attributes::new().with("group", "a b").is_err());
}

#[test]
fn debug_is_readable() {
    let doc = Document::parse(&format!("{A} group=g # c\nbad\n"));
    let debug = format!("{doc:?}");
    assert!(
        debug.contains(A) && debug.contains("InvalidPeerId"),
        "{debug}"
    );
}

// ---- proptests ---------------------------------------------------

/// Fragments that exercise the parser's edges.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\r".to_owned()),
        Just("#".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just(A.to_owned()),
        Just(B.to_owned()),
        Just("expires=".to_owned()),
        Just("2026-12-31T23:59:59Z".to_owned()),
        Just("verified=sha256:0a1b2c3d".to_owned()),
        Just("group=x".to_owned()),
        Just("é漢\u{feff}\u{202e}".to_owned()),
        any::<String>(),
    ]
}

fn messy_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
    ]
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._:/+=é漢-]{1,12}"
}

fn attribute() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        (-62_167_219_200i64..253_402_300_799)
            .prop_map(|s| (EXPIRES.to_owned(), UnixTime::from_secs(s).to_rfc3339())),
        Just((
            EXPIRES.to_owned(),
            "2026-01-31T13:00:00.25+01:00".to_owned()
        )),
        "[0-9a-fA-F]{8}".prop_map(|h| (VERIFIED.to_owned(), format!("sha256:{h}"))),
        token().prop_map(|v| (GROUP.to_owned(), v)),
        token().prop_map(|v| (HMAC_PROOF.to_owned(), v)),
        ("[a-z0-9_-]{1,8}", token()).prop_filter("unknown key", |(k, _)| ![
            EXPIRES, VERIFIED, GROUP, HMAC_PROOF
        ]
        .contains(&k.as_str())),
    ]
}

/// Entries as (peer, attributes, comment, line).
type Summary = Vec<(PeerId, Vec<(String, String)>, Option<String>, usize)>;

#[derive(Debug, Clone)]
struct GenEntry {
    attrs: Vec<(String, String)>,
    comment: Option<String>,
    text_without_peer: (String, Vec<String>, String, String),
}

#[derive(Debug, Clone)]
enum GenLine {
    Blank(String),
    Comment(String),
    Entry(GenEntry),
}

fn gen_entry() -> impl Strategy<Value = GenEntry> {
    (
        "[ \t]{0,2}",
        prop::collection::vec((attribute(), "[ \t]{1,3}"), 0..5),
        prop::option::of(("[ \t]{0,3}", "[^\r\n]{0,16}")),
        "[ \t]{0,2}",
    )
        .prop_map(|(lead, attrs, comment, trail)| {
            let mut seen = BTreeSet::new();
            let attrs: Vec<_> = attrs
                .into_iter()
                .filter(|((k, _), _)| seen.insert(k.clone()))
                .collect();
            let mut middle = Vec::new();
            for ((k, v), sep) in &attrs {
                middle.push(format!("{sep}{k}={v}"));
            }
            let (comment_text, expected_comment) = match comment {
                None => (String::new(), None),
                Some((sep, c)) => {
                    let expected = c.trim_ascii();
                    (
                        format!("{sep}#{c}"),
                        (!expected.is_empty()).then(|| expected.to_owned()),
                    )
                }
            };
            GenEntry {
                attrs: attrs.into_iter().map(|(kv, _)| kv).collect(),
                comment: expected_comment,
                text_without_peer: (lead, middle, comment_text, trail),
            }
        })
}

fn gen_line() -> impl Strategy<Value = GenLine> {
    prop_oneof![
        1 => "[ \t]{0,3}".prop_map(GenLine::Blank),
        1 => "[ \t]{0,2}#[^\r\n]{0,16}".prop_map(GenLine::Comment),
        4 => gen_entry().prop_map(GenLine::Entry),
    ]
}

/// A valid document: its text and the expected entries
/// (peer, attributes, comment, line).
#[derive(Debug, Clone)]
struct GenDoc {
    text: String,
    entries: Summary,
}

fn gen_doc(trailing_newline: bool) -> impl Strategy<Value = GenDoc> {
    (
        prop::collection::vec((gen_line(), any::<bool>()), 0..12),
        0..12usize,
        any::<bool>(),
    )
        .prop_map(move |(lines, offset, missing_last)| {
            let mut text = String::new();
            let mut entries = Vec::new();
            let count = lines.len();
            for (index, (line, crlf)) in lines.into_iter().enumerate() {
                match line {
                    GenLine::Blank(s) | GenLine::Comment(s) => text.push_str(&s),
                    GenLine::Entry(e) => {
                        let peer = pool()[offset + entries.len()];
                        let (lead, middle, comment, trail) = e.text_without_peer;
                        text.push_str(&format!("{lead}{peer}{}{comment}{trail}", middle.concat()));
                        entries.push((peer, e.attrs, e.comment, index + 1));
                    }
                }
                let last = index + 1 == count;
                if !(last && missing_last && !trailing_newline) {
                    text.push_str(if crlf { "\r\n" } else { "\n" });
                }
            }
            GenDoc { text, entries }
        })
}

fn summary(doc: &Document) -> Summary {
    doc.entries()
        .map(|e| {
            let attrs = e
                .attributes()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (e.peer(), attrs, e.comment().map(str::to_owned), e.line())
        })
        .collect()
}

fn sorted(mut entries: Summary) -> Summary {
    // canonical order: known keys first, unknown keys keep their order
    let rank = |k: &str| {
        [EXPIRES, VERIFIED, GROUP, HMAC_PROOF]
            .iter()
            .position(|x| *x == k)
    };
    for (_, attrs, _, _) in &mut entries {
        attrs.sort_by_key(|(k, _)| rank(k).unwrap_or(4));
    }
    entries
}

proptest! {
    #[test]
    fn render_of_parse_is_identity(text in messy_text()) {
        let doc = Document::parse(&text);
        prop_assert_eq!(doc.render(), text.clone());
        prop_assert_eq!(Document::parse(&doc.render()), doc.clone());
        for (index, line) in doc.lines().iter().enumerate() {
            prop_assert_eq!(line.number(), index + 1);
            if let Some(error) = line.error() {
                prop_assert_eq!(error.line(), index + 1);
            }
        }
        prop_assert_eq!(Document::parse_strict(&text).is_ok(), doc.is_valid());
    }

    #[test]
    fn generated_documents_parse_to_their_entries(generated in gen_doc(false)) {
        let doc = Document::parse_strict(&generated.text).unwrap();
        prop_assert_eq!(summary(&doc), sorted(generated.entries.clone()));
        prop_assert_eq!(doc.render(), generated.text.clone());
        // every entry written canonically parses to the same entries
        let canonical: String = doc
            .lines()
            .iter()
            .map(|l| {
                let text = l.entry().map_or_else(|| l.text().to_owned(), Entry::to_line);
                format!("{text}{}", l.ending().as_str())
            })
            .collect();
        let reparsed = Document::parse_strict(&canonical).unwrap();
        prop_assert_eq!(summary(&reparsed), summary(&doc));
        let entries: Vec<_> = reparsed.entries().cloned().collect();
        let original: Vec<_> = doc.entries().cloned().collect();
        prop_assert_eq!(entries, original);
    }

    #[test]
    fn add_then_remove_restores_the_text(
        text in prop_oneof![
            gen_doc(true).prop_map(|g| g.text),
            messy_text().prop_map(|t| if t.is_empty() || t.ends_with('\n') { t } else { t + "\n" }),
        ],
        seed in 12..24usize,
        attrs in prop::collection::vec(attribute(), 0..4),
        comment in prop::option::of("[^\r\n\u{0}-\u{1f}\u{7f}-\u{9f}]{0,12}"),
    ) {
        let peer = pool()[seed];
        let mut doc = Document::parse(&text);
        prop_assume!(!doc.lines().iter().any(|l| l.peer() == Some(peer)));
        let mut attributes = Attributes::new();
        for (k, v) in &attrs {
            attributes.set(k, v).unwrap();
        }
        let comment = comment.filter(|c| !c.chars().any(is_unsafe_char));
        doc.add(peer, attributes.clone(), comment.as_deref()).unwrap();
        let entry = doc.get(&peer).unwrap().clone();
        prop_assert_eq!(entry.attributes(), &attributes);
        prop_assert_eq!(entry.comment(), comment.as_deref().map(str::trim_ascii).filter(|c| !c.is_empty()));
        prop_assert_eq!(doc.lines().len(), Document::parse(&text).lines().len() + 1);
        let removed = doc.remove(&peer).unwrap();
        prop_assert_eq!(removed.entry(), Some(&entry));
        prop_assert_eq!(doc.render(), text);
    }

    #[test]
    fn set_attribute_keeps_other_lines(
        generated in gen_doc(false),
        pick in any::<prop::sample::Index>(),
        (key, value) in attribute(),
    ) {
        prop_assume!(!generated.entries.is_empty());
        let before = Document::parse(&generated.text);
        let target = generated.entries[pick.index(generated.entries.len())].0;
        let target_line = before.get(&target).unwrap().line();
        let mut doc = before.clone();
        doc.set_attribute(&target, &key, &value).unwrap();
        prop_assert_eq!(doc.lines().len(), before.lines().len());
        for (old, new) in before.lines().iter().zip(doc.lines()) {
            prop_assert_eq!(old.ending(), new.ending());
            if old.number() != target_line {
                prop_assert_eq!(old, new);
            }
        }
        let entry = doc.get(&target).unwrap();
        prop_assert_eq!(entry.attributes().get(&key), Some(value.as_str()));
        prop_assert_eq!(entry.comment(), before.get(&target).unwrap().comment());
        prop_assert!(doc.is_valid());
    }

    #[test]
    fn edits_on_arbitrary_text_never_panic_and_stay_consistent(
        text in messy_text(),
        ops in prop::collection::vec((0..5u8, 0..2usize, token(), "[a-z_-]{1,6}"), 0..8),
    ) {
        let mut doc = Document::parse(&text);
        for (op, who, value, key) in ops {
            let peer = [a(), b()][who];
            let _ = match op {
                0 => doc.add(peer, Attributes::new(), Some(&value)).map(drop),
                1 => doc.remove(&peer).map(drop),
                2 => doc.set_attribute(&peer, &key, &value).map(drop),
                3 => doc.remove_attribute(&peer, &key).map(drop),
                _ => doc.set_comment(&peer, Some(&value)).map(drop),
            };
            prop_assert_eq!(Document::parse(&doc.render()), doc.clone());
        }
    }
}
