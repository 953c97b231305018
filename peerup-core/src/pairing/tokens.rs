//! The relay's pairing groups (WIRE.md §13): one-time codes kept as their
//! SHA-256, compared in constant time, single use, burned after
//! [`MAX_FAILURES`] failed attempts, gone with their group's TTL or a
//! revoke. In memory only: a relay restart forgets every group, by design
//! (the codes were shown once; nothing on disk can leak them).
//!
//! Redeeming is two steps, so a failure after the token matched (the
//! relay could not write `relay_authorized_keys`, the joiner's stream
//! broke before the answer) is counted against that token instead of
//! spending it, as the Go relay did:
//!
//! 1. [`TokenStore::begin`] finds the slot and holds it
//!    ([`Slot::Pending`]): a second joiner with the same code is refused
//!    meanwhile;
//! 2. [`TokenStore::complete`] records the member, or
//!    [`TokenStore::abort`] counts a failure and frees the slot (burned at
//!    the third).
//!
//! A token matching no slot fails the same way, with the same answer on
//! the wire, whether it never existed, was used, burned, or expired: the
//! relay tells a guesser nothing. Counting such guesses is the enrollment
//! gate's business ([`super::enroll`]), not this store's: they name no
//! token.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use super::wire::GroupId;
use super::wire::Proof;
use crate::PeerId;
use crate::time::UnixTime;

/// Bytes of a pairing token (128 bits).
pub const TOKEN_LEN: usize = 16;
/// Most codes in one group (the group size travels as one byte; WIRE.md
/// §13 caps it at 100).
pub const MAX_CODES: usize = 100;
/// Failed attempts that burn a token.
pub const MAX_FAILURES: u8 = 3;
/// A group's lifetime unless the operator says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Longest lifetime of a group: codes are bearer secrets, printed once.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most groups alive at once (memory: 64 x 100 slots).
pub const MAX_GROUPS: usize = 64;
/// Longest name the relay records for a member (the request's bound).
pub const MAX_NAME_LEN: usize = 64;

/// What the operator asked for (`peerup-relay pair`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// How long the codes stay valid.
    pub ttl: Duration,
    /// How long the authorizations the codes create last, counted from
    /// each join (`--expires`); `None`: until revoked by hand.
    pub authorization_ttl: Option<Duration>,
    /// The name given to a member that sends none: `<prefix>-<n>`, `n`
    /// its code's number from 1; `None`: `paired-<date>` (the Go relay's
    /// comment).
    pub name_prefix: Option<String>,
}

impl Default for GroupSpec {
    fn default() -> Self {
        GroupSpec {
            ttl: DEFAULT_TTL,
            authorization_ttl: None,
            name_prefix: None,
        }
    }
}

/// Why a group could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// No codes, or more than [`MAX_CODES`].
    #[error("--count must be 1 to {MAX_CODES} (got {0})")]
    Count(usize),
    /// A TTL of zero or beyond [`MAX_TTL`].
    #[error("--ttl must be between 1s and {} days", MAX_TTL.as_secs() / 86400)]
    Ttl,
    /// [`MAX_GROUPS`] groups are alive.
    #[error(
        "{MAX_GROUPS} pairing groups are open; revoke one (`peerup-relay pair --revoke <group>`) or wait for one to expire"
    )]
    TooManyGroups,
    /// The random group ID is taken (the caller draws again).
    #[error("group ID {} is taken", .0.as_str())]
    IdTaken(GroupId),
    /// The same token twice (the caller's randomness is broken).
    #[error("two codes of one group are the same; the random number generator is broken")]
    DuplicateToken,
    /// A name prefix that cannot start a name.
    #[error(
        "--name-prefix {0:?}: use 1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    NamePrefix(String),
}

/// One code of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Not used yet; `failures` attempts failed after the token matched.
    Unused {
        /// Failed attempts so far.
        failures: u8,
    },
    /// Held by a joiner whose pairing is under way.
    Pending {
        /// Failed attempts so far.
        failures: u8,
        /// The joiner.
        peer: PeerId,
    },
    /// Used: this member joined.
    Used(Member),
    /// Burned after [`MAX_FAILURES`] failed attempts.
    Burned,
}

/// A machine that joined with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its peer ID.
    pub peer: PeerId,
    /// The name it gave (or the relay gave it).
    pub name: String,
    /// `HMAC-SHA256(token, group ID)`: its proof of holding a code.
    pub proof: Proof,
    /// When it joined.
    pub joined: UnixTime,
}

#[derive(Debug, Clone)]
struct Group {
    spec: GroupSpec,
    created: UnixTime,
    expires: UnixTime,
    hashes: Vec<[u8; 32]>,
    slots: Vec<Slot>,
}

/// A held slot, from [`TokenStore::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The group.
    pub group: GroupId,
    /// The slot's index in the group.
    pub index: usize,
    /// The joiner.
    pub peer: PeerId,
}

/// A member recorded by [`TokenStore::complete`]: what the relay answers
/// and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The group.
    pub group: GroupId,
    /// Codes in the group.
    pub group_size: u8,
    /// The new member (its name settled).
    pub member: Member,
    /// The members that joined before it.
    pub others: Vec<Member>,
    /// When its authorization ends (`--expires`), if it does.
    pub authorization_expires: Option<UnixTime>,
}

/// Why a pairing attempt failed. The relay answers every one the same
/// way (`pairing failed`); the kinds are for its log and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedeemError {
    /// No live group has this token unused (never existed, used, burned,
    /// expired or revoked: not told apart on purpose).
    #[error("pairing failed: unknown, used, burned or expired code")]
    Unknown,
    /// Another joiner holds the slot right now.
    #[error("pairing failed: the code is being used by another machine")]
    Busy,
    /// The ticket's group or slot is gone (revoked or expired meanwhile).
    #[error("pairing failed: the group was revoked or expired")]
    Gone,
}

/// A snapshot of a group, for `pair --list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group.
    pub id: GroupId,
    /// When it was made.
    pub created: UnixTime,
    /// When its codes stop working.
    pub expires: UnixTime,
    /// Codes in it.
    pub size: usize,
    /// Codes used.
    pub used: usize,
    /// Codes burned.
    pub burned: usize,
    /// Its members.
    pub members: Vec<Member>,
}

/// The relay's pairing groups.
#[derive(Debug, Default, Clone)]
pub struct TokenStore {
    groups: BTreeMap<GroupId, Group>,
}

fn hash(token: &[u8; TOKEN_LEN]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 40
        && p.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && p.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

impl TokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a group of `tokens.len()` codes (the caller draws the tokens
    /// and the ID from the OS and encodes the codes).
    ///
    /// # Errors
    /// [`CreateError`]: a count outside 1..=100, a bad TTL or name
    /// prefix, too many groups, a taken ID (draw again) or a repeated
    /// token.
    pub fn create(
        &mut self,
        now: UnixTime,
        id: GroupId,
        tokens: &[[u8; TOKEN_LEN]],
        spec: GroupSpec,
    ) -> Result<GroupId, CreateError> {
        self.expire(now);
        if tokens.is_empty() || tokens.len() > MAX_CODES {
            return Err(CreateError::Count(tokens.len()));
        }
        if spec.ttl.is_zero() || spec.ttl > MAX_TTL {
            return Err(CreateError::Ttl);
        }
        if let Some(p) = &spec.name_prefix
            && !valid_prefix(p)
        {
            return Err(CreateError::NamePrefix(p.chars().take(64).collect()));
        }
        if self.groups.len() >= MAX_GROUPS {
            return Err(CreateError::TooManyGroups);
        }
        if self.groups.contains_key(&id) {
            return Err(CreateError::IdTaken(id));
        }
        let hashes: Vec<[u8; 32]> = tokens.iter().map(hash).collect();
        let mut sorted = hashes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != hashes.len() {
            return Err(CreateError::DuplicateToken);
        }
        let slots = vec![Slot::Unused { failures: 0 }; tokens.len()];
        self.groups.insert(
            id.clone(),
            Group {
                expires: now.saturating_add(spec.ttl),
                spec,
                created: now,
                hashes,
                slots,
            },
        );
        Ok(id)
    }

    /// Finds `token`'s slot and holds it for `peer`.
    ///
    /// Every live slot's hash is compared, in constant time each, and the
    /// search does not stop at a match: the time taken says nothing about
    /// which slot (if any) matched.
    ///
    /// # Errors
    /// [`RedeemError::Unknown`] when no live group has it unused,
    /// [`RedeemError::Busy`] when another joiner holds it.
    pub fn begin(
        &mut self,
        now: UnixTime,
        token: &[u8; TOKEN_LEN],
        peer: PeerId,
    ) -> Result<Ticket, RedeemError> {
        self.expire(now);
        let h = hash(token);
        let mut found = None;
        for (id, g) in &self.groups {
            for (i, stored) in g.hashes.iter().enumerate() {
                if bool::from(stored[..].ct_eq(&h[..])) {
                    found = Some((id.clone(), i));
                }
            }
        }
        let Some((group, index)) = found else {
            return Err(RedeemError::Unknown);
        };
        let slot = self
            .groups
            .get_mut(&group)
            .and_then(|g| g.slots.get_mut(index))
            .ok_or(RedeemError::Unknown)?;
        match *slot {
            Slot::Unused { failures } => {
                *slot = Slot::Pending { failures, peer };
                Ok(Ticket { group, index, peer })
            }
            Slot::Pending { .. } => Err(RedeemError::Busy),
            Slot::Used(_) | Slot::Burned => Err(RedeemError::Unknown),
        }
    }

    /// Records the ticket's joiner as a member with `name` (`None` or
    /// empty: the relay's name for it, see [`GroupSpec::name_prefix`])
    /// and its `proof`.
    ///
    /// # Errors
    /// [`RedeemError::Gone`] when the group was revoked or the slot is no
    /// longer held by this ticket.
    pub fn complete(
        &mut self,
        now: UnixTime,
        ticket: &Ticket,
        name: Option<&str>,
        proof: Proof,
    ) -> Result<Joined, RedeemError> {
        let g = self
            .groups
            .get_mut(&ticket.group)
            .ok_or(RedeemError::Gone)?;
        match g.slots.get(ticket.index) {
            Some(Slot::Pending { peer, .. }) if *peer == ticket.peer => {}
            _ => return Err(RedeemError::Gone),
        }
        let name = member_name(&g.spec, ticket.index, name, now);
        let member = Member {
            peer: ticket.peer,
            name,
            proof,
            joined: now,
        };
        let others = g
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Used(m) if m.peer != ticket.peer => Some(m.clone()),
                _ => None,
            })
            .collect();
        g.slots[ticket.index] = Slot::Used(member.clone());
        Ok(Joined {
            group: ticket.group.clone(),
            group_size: u8::try_from(g.slots.len()).unwrap_or(u8::MAX),
            member,
            others,
            authorization_expires: g.spec.authorization_ttl.map(|d| now.saturating_add(d)),
        })
    }

    /// Counts a failed attempt on the ticket's slot and frees it for
    /// another try, or burns it at the [`MAX_FAILURES`]th. Returns whether
    /// it burned. A ticket whose slot is gone changes nothing.
    pub fn abort(&mut self, ticket: &Ticket) -> bool {
        let Some(slot) = self
            .groups
            .get_mut(&ticket.group)
            .and_then(|g| g.slots.get_mut(ticket.index))
        else {
            return false;
        };
        let Slot::Pending { failures, peer } = *slot else {
            return false;
        };
        if peer != ticket.peer {
            return false;
        }
        let failures = failures.saturating_add(1);
        if failures >= MAX_FAILURES {
            *slot = Slot::Burned;
            true
        } else {
            *slot = Slot::Unused { failures };
            false
        }
    }

    /// Drops a group: its unused codes stop working. Its members stay
    /// authorized (the relay's `deauthorize` removes them); they are
    /// returned so the operator can be told who they are.
    ///
    /// Returns `None` for an unknown group.
    pub fn revoke(&mut self, id: &GroupId) -> Option<Vec<Member>> {
        self.groups.remove(id).map(|g| members(&g))
    }

    /// Drops the groups whose TTL has passed. Their members stay
    /// authorized, as after a revoke.
    pub fn expire(&mut self, now: UnixTime) {
        self.groups.retain(|_, g| now < g.expires);
    }

    /// When the next group expires: the relay's timer (and the end of
    /// enrollment when it was the last group with unused codes).
    pub fn next_expiry(&self) -> Option<UnixTime> {
        self.groups.values().map(|g| g.expires).min()
    }

    /// Whether some live group has a code that can still be used: the
    /// relay admits strangers on probation only then.
    pub fn enrolling(&self, now: UnixTime) -> bool {
        self.groups.values().any(|g| {
            now < g.expires
                && g.slots
                    .iter()
                    .any(|s| matches!(s, Slot::Unused { .. } | Slot::Pending { .. }))
        })
    }

    /// The members of `id` (for introductions).
    pub fn members(&self, id: &GroupId) -> Vec<Member> {
        self.groups.get(id).map(members).unwrap_or_default()
    }

    /// The name the ticket's joiner gets: the one it sent (cut to
    /// [`MAX_NAME_LEN`]), else `<prefix>-<n>` or `paired-<date>`; what
    /// [`TokenStore::complete`] records for the same arguments.
    pub fn member_name(&self, ticket: &Ticket, name: Option<&str>, now: UnixTime) -> String {
        match self.groups.get(&ticket.group) {
            Some(g) => member_name(&g.spec, ticket.index, name, now),
            None => member_name(&GroupSpec::default(), ticket.index, name, now),
        }
    }

    /// How long the authorizations of `id`'s members last (`--expires`).
    pub fn authorization_ttl(&self, id: &GroupId) -> Option<Duration> {
        self.groups.get(id).and_then(|g| g.spec.authorization_ttl)
    }

    /// The groups `peer` is a member of, live ones only.
    pub fn groups_of(&self, peer: &PeerId) -> Vec<GroupId> {
        self.groups
            .iter()
            .filter(|(_, g)| {
                g.slots
                    .iter()
                    .any(|s| matches!(s, Slot::Used(m) if m.peer == *peer))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The size of `id`, if it is live.
    pub fn group_size(&self, id: &GroupId) -> Option<u8> {
        self.groups
            .get(id)
            .map(|g| u8::try_from(g.slots.len()).unwrap_or(u8::MAX))
    }

    /// Every live group, oldest first.
    pub fn list(&self, now: UnixTime) -> Vec<GroupInfo> {
        let mut out: Vec<GroupInfo> = self
            .groups
            .iter()
            .filter(|(_, g)| now < g.expires)
            .map(|(id, g)| GroupInfo {
                id: id.clone(),
                created: g.created,
                expires: g.expires,
                size: g.slots.len(),
                used: g
                    .slots
                    .iter()
                    .filter(|s| matches!(s, Slot::Used(_)))
                    .count(),
                burned: g.slots.iter().filter(|s| **s == Slot::Burned).count(),
                members: members(g),
            })
            .collect();
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        out
    }

    /// The state of one slot (for tests and `--list`).
    pub fn slot(&self, id: &GroupId, index: usize) -> Option<&Slot> {
        self.groups.get(id).and_then(|g| g.slots.get(index))
    }
}

fn members(g: &Group) -> Vec<Member> {
    g.slots
        .iter()
        .filter_map(|s| match s {
            Slot::Used(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn member_name(spec: &GroupSpec, index: usize, name: Option<&str>, now: UnixTime) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => n.chars().take(MAX_NAME_LEN).collect(),
        None => match &spec.name_prefix {
            Some(p) => format!("{p}-{}", index + 1),
            None => format!("paired-{}", now.date()),
        },
    }
}
