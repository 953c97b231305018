//! Who a node adds after relay pairing: the members a pairing answer
//! lists (the joiner's side, WIRE.md §13) and the members a relay
//! introduces later (`/peerup/peer-notify/1.0.0`, §14), with the rules
//! that keep a relay from adding whom it likes; and the relay's
//! de-duplication of introductions.
//!
//! Acceptance rules for an introduction (all must hold, else nothing is
//! changed):
//! 1. it comes from a relay in the node's config;
//! 2. that relay's own line in `authorized_keys` names the group
//!    (`group=`): the node joined that group through that relay (another
//!    relay that learned the group's ID cannot add to it);
//! 3. the group's members the node knows (lines with that `group=`, not
//!    counting the relay's line), the new ones, and the node itself stay
//!    within the group size: the smaller of what the introduction states
//!    and what the relay answered when the node joined (kept on the
//!    relay's line as `group_size=`), never more than
//!    [`super::tokens::MAX_CODES`].
//!
//! The node's own ID, the relay's, and peers already in
//! `authorized_keys` are never added (an existing line is not touched:
//! its comment, expiry and `verified=` stay the person's).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::PeerId;
use crate::authorized_keys::Document;
use crate::authorized_keys::GROUP;
use crate::naming::{Name, Names, unique_name};
use crate::time::Instant;

/// The attribute on the relay's line that keeps the group's size from the
/// relay's answer at join.
pub const GROUP_SIZE: &str = "group_size";

/// A member as a pairing answer or an introduction names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introduced {
    /// Its peer ID.
    pub peer: PeerId,
    /// The name it chose (may be empty).
    pub name: String,
    /// Its proof of holding a code, when the relay sent one.
    pub proof: Option<[u8; 32]>,
}

/// A peer to authorize, as the node will write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    /// Its peer ID.
    pub peer: PeerId,
    /// Its name under `names:` (made valid and unique), if one could be
    /// made.
    pub name: Option<Name>,
    /// The `authorized_keys` comment: the name it chose, else
    /// `introduced-<date>`.
    pub comment: String,
    /// The `hmac_proof=` attribute (hex), when the relay sent a proof.
    pub proof: Option<String>,
}

/// Why an introduction was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntroRefusal {
    /// The sender is not a relay in the config.
    #[error("introduction from {0}, which is not one of our relays")]
    NotOurRelay(PeerId),
    /// No `group=` attribute names the group.
    #[error("introduction for group {0}, which this machine did not join")]
    UnknownGroup(String),
    /// More members than the group can hold.
    #[error(
        "introduction for group {group} would make {total} members of a group of {size}; ignored"
    )]
    TooMany {
        /// The group.
        group: String,
        /// Members after it (ourselves included).
        total: usize,
        /// The group's size.
        size: usize,
    },
}

/// The members to add from an introduction sent by `from`.
///
/// `today` is the date for the comment of a member that gave no name
/// (`YYYY-MM-DD`, [`crate::time::UnixTime::date`]).
///
/// # Errors
/// [`IntroRefusal`] when one of the module's rules fails; nothing is to
/// be changed then.
#[allow(clippy::too_many_arguments)]
pub fn accept_introduction(
    us: &PeerId,
    from: &PeerId,
    relays: &BTreeSet<PeerId>,
    doc: &Document,
    names: &Names,
    group: &str,
    group_size: u8,
    peers: &[Introduced],
    today: &str,
) -> Result<Vec<NewMember>, IntroRefusal> {
    if !relays.contains(from) {
        return Err(IntroRefusal::NotOurRelay(*from));
    }
    let Some(relay_line) = doc
        .get(from)
        .filter(|e| e.attributes().get(GROUP) == Some(group))
    else {
        return Err(IntroRefusal::UnknownGroup(group.to_owned()));
    };
    let joined_size = relay_line
        .attributes()
        .get(GROUP_SIZE)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(super::tokens::MAX_CODES);
    let known = doc
        .entries()
        .filter(|e| e.attributes().get(GROUP) == Some(group))
        .filter(|e| e.peer() != *from && e.peer() != *us)
        .count();
    let added = new_members(us, from, doc, names, peers, "introduced", today);
    let total = known + added.len() + 1;
    let size = usize::from(group_size)
        .min(joined_size)
        .min(super::tokens::MAX_CODES);
    if total > size {
        return Err(IntroRefusal::TooMany {
            group: group.to_owned(),
            total,
            size,
        });
    }
    Ok(added)
}

/// The members to add from the relay's pairing answer: every listed peer
/// but ourselves, the relay, and peers already authorized; at most
/// `group_size - 1` (the answer comes from the relay the code named, but
/// its length is still bounded).
pub fn accept_answer(
    us: &PeerId,
    relay: &PeerId,
    doc: &Document,
    names: &Names,
    group_size: u8,
    peers: &[Introduced],
    today: &str,
) -> Vec<NewMember> {
    let mut added = new_members(us, relay, doc, names, peers, "paired", today);
    let limit = usize::from(group_size)
        .min(super::tokens::MAX_CODES)
        .saturating_sub(1);
    added.truncate(limit);
    added
}

fn new_members(
    us: &PeerId,
    relay: &PeerId,
    doc: &Document,
    names: &Names,
    peers: &[Introduced],
    fallback: &str,
    today: &str,
) -> Vec<NewMember> {
    let mut names = names.clone();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for p in peers {
        if p.peer == *us || p.peer == *relay || doc.contains(&p.peer) || !seen.insert(p.peer) {
            continue;
        }
        let name = unique_name(&p.name, &p.peer, &names);
        if let Some(n) = &name {
            names.insert(n.clone(), p.peer);
        }
        let comment = match &name {
            Some(n) => n.to_string(),
            None => format!("{fallback}-{today}"),
        };
        out.push(NewMember {
            peer: p.peer,
            name,
            comment,
            proof: p.proof.map(|b| hex(&b)),
        });
    }
    out
}

/// Lower-case hex (the `hmac_proof=` attribute's form).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// How long the relay keeps from sending one member the same group's
/// introductions again.
pub const RESEND_WINDOW: Duration = Duration::from_secs(30);

/// The relay's record of introductions sent, so a member that reconnects
/// often is not sent the same list each time (WIRE.md §14: again on
/// reconnect, with a 30 s de-duplication window). Bounded: entries older
/// than the window are dropped at every call.
#[derive(Debug, Default, Clone)]
pub struct IntroLog {
    sent: BTreeMap<(PeerId, String), Instant>,
}

impl IntroLog {
    /// Nothing sent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to introduce `group`'s members to `member` now; records the
    /// sending when it answers yes.
    pub fn should_send(&mut self, now: Instant, member: PeerId, group: &str) -> bool {
        self.sent
            .retain(|_, at| now.saturating_duration_since(*at) < RESEND_WINDOW);
        let key = (member, group.to_owned());
        if self.sent.contains_key(&key) {
            return false;
        }
        self.sent.insert(key, now);
        true
    }

    /// Forgets `member`'s sendings of `group` (a new member joined: the
    /// others must hear of it at once).
    pub fn forget_group(&mut self, group: &str) {
        self.sent.retain(|(_, g), _| g != group);
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }
}
