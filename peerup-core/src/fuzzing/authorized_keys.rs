//! The `authorized_keys` document (WIRE.md §7).

use crate::PeerId;
use crate::authorized_keys::{Attributes, Document, LineEnding, Status};
use crate::time::UnixTime;

use super::*;

// ---------------------------------------------------------------------------
// authorized_keys

/// The `authorized_keys` document (WIRE.md §7). The first byte is the
/// length of an edit script that follows; the rest, lossily decoded, is
/// the document. Each edit (`add`, `remove`, `set_attribute`,
/// `set_expires`, `remove_attribute`, `set_comment`) names a peer of the
/// document or of a fixed pool.
///
/// # Panics
/// When `render(parse(s)) != s`, `parse(render(d)) != d`, line numbers or
/// statuses are inconsistent, a peer named on an invalid line is
/// authorized, a canonical entry line parses to another entry, a refused
/// edit changed the document, or an accepted edit changed another line or
/// another peer's authorization, or did not do what it said.
pub fn authorized_keys(data: &[u8]) {
    let mut input = Input::new(data);
    let script_len = usize::from(input.u8());
    let rest = input.rest();
    let (script, text) = rest.split_at(script_len.min(rest.len()));
    let text = String::from_utf8_lossy(text);

    let mut doc = Document::parse(&text);
    assert!(doc.render() == *text, "render(parse(s)) != s");
    check_document(&doc);
    assert_eq!(
        Document::parse_strict(&text).is_ok(),
        doc.is_valid(),
        "parse_strict disagrees with parse"
    );

    let mut input = Input::new(script);
    while !input.is_empty() {
        let before = doc.clone();
        let op = input.u8();
        let mut peers: Vec<PeerId> = before.lines().iter().filter_map(|l| l.peer()).collect();
        peers.extend([peer(2), peer(3), peer(4)]);
        let target = peers[input.below(peers.len())];
        let result = match op % 6 {
            0 => {
                let mut attributes = Attributes::new();
                for _ in 0..input.below(3) {
                    let (key, value) = (attribute_key(&mut input), attribute_value(&mut input));
                    let _ = attributes.set(&key, &value);
                }
                let comment = comment(&mut input);
                let r = doc.add(target, attributes.clone(), comment.as_deref());
                if r.is_ok() {
                    check_added(&before, &doc, target, &attributes, comment.as_deref());
                }
                r.map(drop)
            }
            1 => {
                let r = doc.remove(&target);
                if let Ok(removed) = &r {
                    let kept: Vec<(&str, LineEnding)> = before
                        .lines()
                        .iter()
                        .filter(|l| l.peer() != Some(target))
                        .map(|l| (l.text(), l.ending()))
                        .collect();
                    let now: Vec<(&str, LineEnding)> =
                        doc.lines().iter().map(|l| (l.text(), l.ending())).collect();
                    assert_eq!(now, kept, "remove changed other lines");
                    assert!(
                        removed.lines().iter().all(|l| l.peer() == Some(target)),
                        "remove took a line of another peer"
                    );
                }
                r.map(drop)
            }
            2 => {
                let (key, value) = (attribute_key(&mut input), attribute_value(&mut input));
                let r = doc.set_attribute(&target, &key, &value);
                if r.is_ok() {
                    let entry = doc.get(&target);
                    assert_eq!(
                        entry.and_then(|e| e.attributes().get(&key)),
                        Some(value.as_str()),
                        "set_attribute did not set {key}"
                    );
                }
                r.map(drop)
            }
            3 => {
                let at = UnixTime::from_millis(i64::from(input.u16()) * 86_400_000 - 1_000_000);
                let r = doc.set_expires(&target, at);
                if r.is_ok() {
                    assert_eq!(doc.get(&target).and_then(|e| e.expires()), Some(at));
                }
                r.map(drop)
            }
            4 => {
                let key = attribute_key(&mut input);
                let r = doc.remove_attribute(&target, &key);
                if r.is_ok() {
                    assert!(
                        doc.get(&target)
                            .is_some_and(|e| e.attributes().get(&key).is_none()),
                        "remove_attribute left {key}"
                    );
                }
                r.map(drop)
            }
            _ => {
                let comment = comment(&mut input);
                let r = doc.set_comment(&target, comment.as_deref());
                if r.is_ok() {
                    let want = comment
                        .as_deref()
                        .map(str::trim_ascii)
                        .filter(|c| !c.is_empty());
                    assert_eq!(doc.get(&target).and_then(|e| e.comment()), want);
                }
                r.map(drop)
            }
        };
        match result {
            Err(_) => assert_eq!(doc, before, "a refused edit changed the document"),
            Ok(()) => {
                if op % 6 >= 2 {
                    check_one_line_changed(&before, &doc, target);
                }
                check_others_unchanged(&before, &doc, target, &peers);
            }
        }
        check_document(&doc);
    }
}

fn attribute_key(input: &mut Input<'_>) -> String {
    match input.below(10) {
        0 => "expires".to_owned(),
        1 => "verified".to_owned(),
        2 => "group".to_owned(),
        3 => "hmac_proof".to_owned(),
        4 => "x-note_1".to_owned(),
        5 => "Bad".to_owned(),
        _ => input.text(12),
    }
}

fn attribute_value(input: &mut Input<'_>) -> String {
    match input.below(10) {
        0 => "2026-12-31T23:59:59Z".to_owned(),
        1 => "2026-12-31T23:59:59.5+02:00".to_owned(),
        2 => "sha256:1a2b3c4d".to_owned(),
        3 => "home".to_owned(),
        4 => "a b".to_owned(),
        5 => "\u{202e}x".to_owned(),
        _ => input.text(24),
    }
}

fn comment(input: &mut Input<'_>) -> Option<String> {
    match input.below(4) {
        0 => None,
        1 => Some("my-laptop".to_owned()),
        _ => Some(input.text(24)),
    }
}

/// The invariants of a document, edited or not.
fn check_document(doc: &Document) {
    let rendered = doc.render();
    assert_eq!(&Document::parse(&rendered), doc, "parse(render(d)) != d");
    let now = UnixTime::from_secs(1_800_000_000);
    let authorized = doc.authorized_peers(now);
    for (index, line) in doc.lines().iter().enumerate() {
        assert_eq!(line.number(), index + 1, "line numbers are not 1, 2, ...");
        if index + 1 < doc.lines().len() {
            assert_ne!(
                line.ending(),
                LineEnding::Missing,
                "a line in the middle has no end"
            );
        }
        if let Some(error) = line.error() {
            assert_eq!(error.line(), index + 1, "an error names another line");
            if let Some(p) = line.peer() {
                assert!(
                    !doc.is_authorized(&p, now) && !authorized.contains(&p),
                    "{p} is named on an invalid line and still authorized"
                );
            }
        }
        if let Some(entry) = line.entry() {
            assert_eq!(
                authorized.contains(&entry.peer()),
                doc.is_authorized(&entry.peer(), now),
                "authorized_peers disagrees with is_authorized"
            );
            // The canonical line of an entry parses to the same entry.
            let canonical = Document::parse(&entry.to_line());
            let Some(again) = canonical.lines().first().and_then(|l| l.entry()) else {
                panic!(
                    "the canonical line of an entry is not an entry: {}",
                    entry.to_line()
                );
            };
            assert_eq!(again.peer(), entry.peer());
            assert_eq!(again.attributes(), entry.attributes());
            assert_eq!(again.comment(), entry.comment());
        }
    }
    for p in &authorized {
        assert!(doc.contains(p), "authorized {p}, who has no entry");
    }
}

fn check_added(
    before: &Document,
    after: &Document,
    target: PeerId,
    attributes: &Attributes,
    comment: Option<&str>,
) {
    assert_eq!(
        after.lines().len(),
        before.lines().len() + 1,
        "add did not add one line"
    );
    // The old bytes stay as they were, a new line end aside: the new text
    // is the old one, a line end if the last line had none, and the entry.
    // (A last line ending in `\r` then ends in `\r\n`: same bytes, but
    // its text loses the `\r`.)
    let (old, new) = (before.render(), after.render());
    let Some(added) = new.strip_prefix(&old) else {
        panic!("add changed the text before the new line:\n{old:?}\n{new:?}");
    };
    let added = match before.lines().last() {
        Some(l) if l.ending() == LineEnding::Missing => added
            .strip_prefix("\r\n")
            .or_else(|| added.strip_prefix('\n'))
            .unwrap_or_else(|| panic!("add did not end the last line: {added:?}")),
        _ => added,
    };
    assert!(
        added.ends_with('\n') && !added.trim_end_matches(['\r', '\n']).contains(['\r', '\n']),
        "add wrote more than one line: {added:?}"
    );
    let Some(entry) = after.lines().last().and_then(|l| l.entry()) else {
        panic!("add did not append an entry");
    };
    assert_eq!(entry.peer(), target);
    assert_eq!(entry.attributes(), attributes);
    let want = comment.map(str::trim_ascii).filter(|c| !c.is_empty());
    assert_eq!(entry.comment(), want);
}

fn check_one_line_changed(before: &Document, after: &Document, target: PeerId) {
    assert_eq!(
        after.lines().len(),
        before.lines().len(),
        "an edit added or removed lines"
    );
    for (old, new) in before.lines().iter().zip(after.lines()) {
        assert_eq!(old.ending(), new.ending(), "an edit changed a line end");
        if old.entry().is_none_or(|e| e.peer() != target) {
            assert_eq!(old, new, "an edit of {target} changed another line");
        }
    }
}

fn check_others_unchanged(before: &Document, after: &Document, target: PeerId, peers: &[PeerId]) {
    // The line an invalid status names moves when lines are added or
    // removed; the status itself may not change.
    let status = |doc: &Document, p: &PeerId, now| match doc.status(p, now) {
        Status::Invalid { .. } => Status::Invalid { line: 0 },
        other => other,
    };
    for now in [0, 1_800_000_000, 4_000_000_000] {
        let now = UnixTime::from_secs(now);
        for p in peers.iter().filter(|p| **p != target) {
            assert_eq!(
                status(before, p, now),
                status(after, p, now),
                "an edit of {target} changed the status of {p}"
            );
        }
    }
}
