//! Shards: the replica spread over several D1 databases, each a binding of the Worker.
//!
//! The bindings are named by the variable [`SHARDS_VAR`] (`"DB,DB_1,DB_2"`; unset: one shard,
//! [`DEFAULT_SHARD`], so an app with one D1 changes nothing). A room lives on one shard:
//!
//! * its **home**, a stable function of its name over the configured names (rendezvous
//!   hashing: adding a shard moves only the rooms whose home becomes the new one, about 1 in
//!   N+1, instead of nearly all of them as `hash % N` would);
//! * recorded by the room itself when it first opens (its `_nt_meta` row `shard`), so a room
//!   stays where its rows are when the list of shards changes, until it is moved.
//!
//! The room is the authority on its shard: every answer from a room names it in
//! `x-nanotype-shard`, and the gateway caches that. A gateway that guesses wrong (a cold cache
//! for a room that is not on its home) reads a shard without the room's `_nt_rooms` row, which
//! never serves rows: the read falls back to the room, whose answer corrects the cache.

use crate::api::Vars;

/// The variable naming the replica's D1 bindings, comma-separated, in order.
pub const SHARDS_VAR: &str = "NANOTYPE_D1_SHARDS";

/// The one shard of an app that names none: the D1 binding `DB`.
pub const DEFAULT_SHARD: &str = "DB";

/// The header in which a room names the shard it replicates to.
pub const SHARD_HEADER: &str = "x-nanotype-shard";

/// The replica's shards: D1 binding names, in the configured order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shards {
    names: Vec<String>,
}

impl Default for Shards {
    fn default() -> Shards {
        Shards {
            names: vec![DEFAULT_SHARD.to_owned()],
        }
    }
}

impl Shards {
    /// The shards named, in order; blank and repeated names are skipped, and none at all is the
    /// default (one shard, `DB`).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Shards {
        let mut out: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            if !name.is_empty() && !out.iter().any(|n| n == name) {
                out.push(name.to_owned());
            }
        }
        if out.is_empty() {
            return Shards::default();
        }
        Shards { names: out }
    }

    /// The shards [`SHARDS_VAR`] names in `vars` (unset: the default).
    pub fn from_vars(vars: &(impl Vars + ?Sized)) -> Shards {
        match vars.var(SHARDS_VAR) {
            Some(list) => Shards::new(list.split(',')),
            None => Shards::default(),
        }
    }

    /// The binding names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Never: there is at least one shard.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether `name` is one of the shards.
    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The home shard of `room`: the name with the highest score for the room (rendezvous
    /// hashing), the first one on a tie.
    pub fn home(&self, room: &str) -> &str {
        let mut best: Option<(u64, &str)> = None;
        for name in &self.names {
            let score = score(name, room);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, name));
            }
        }
        best.map_or(DEFAULT_SHARD, |(_, n)| n)
    }
}

/// Where the gateway last saw each room whose shard is not its home (rooms on their home need
/// no entry). Bounded: when full it starts again empty, and a room it forgot is found as a cold
/// one is (its home read falls back to the room, whose answer names its shard).
#[derive(Debug, Default)]
pub struct ShardCache {
    away: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

/// The rooms a [`ShardCache`] remembers at most.
pub const SHARD_CACHE_ROOMS: usize = 10_000;

impl ShardCache {
    /// The shard to read `room` from: the one last seen, or its home.
    pub fn shard_of<'a>(&self, shards: &'a Shards, room: &str) -> std::borrow::Cow<'a, str> {
        match self.away.borrow().get(room) {
            Some(shard) if shards.contains(shard) => std::borrow::Cow::Owned(shard.clone()),
            _ => std::borrow::Cow::Borrowed(shards.home(room)),
        }
    }

    /// The room said it is on `shard`.
    pub fn learn(&self, shards: &Shards, room: &str, shard: &str) {
        let mut away = self.away.borrow_mut();
        if shards.home(room) == shard {
            away.remove(room);
            return;
        }
        if away.len() >= SHARD_CACHE_ROOMS && !away.contains_key(room) {
            away.clear();
        }
        away.insert(room.to_owned(), shard.to_owned());
    }
}

/// A stable 64-bit score of (shard, room): FNV-1a over both, then a finaliser that spreads
/// nearby inputs (the same on every platform and version: it decides where rows live).
fn score(shard: &str, room: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in shard.bytes().chain([0u8]).chain(room.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_only_rooms_away_from_home() {
        let s = Shards::new(["DB", "DB_1", "DB_2"]);
        let cache = ShardCache::default();
        assert_eq!(cache.shard_of(&s, "a"), s.home("a"));
        let away = s.names().iter().find(|n| *n != s.home("a")).unwrap();
        cache.learn(&s, "a", away);
        assert_eq!(cache.shard_of(&s, "a"), away.as_str());
        cache.learn(&s, "a", s.home("a"));
        assert!(cache.away.borrow().is_empty());
        // A shard no longer configured is not read.
        cache.learn(&s, "a", "GONE");
        assert_eq!(cache.shard_of(&s, "a"), s.home("a"));
    }

    #[test]
    fn unset_is_one_shard_named_db() {
        let s = Shards::from_vars(&|_: &str| None);
        assert_eq!(s.names(), ["DB"]);
        assert_eq!(s.home("any room"), "DB");
        assert_eq!(Shards::new([" ", ""]).names(), ["DB"]);
    }

    #[test]
    fn names_are_trimmed_and_deduplicated() {
        let s = Shards::from_vars(&|_: &str| Some("DB, DB_1,,DB_1 ,DB_2".to_owned()));
        assert_eq!(s.names(), ["DB", "DB_1", "DB_2"]);
    }

    const PINNED: [&str; 6] = ["DB", "DB", "DB_2", "DB_1", "DB_2", "DB_1"];

    #[test]
    fn homes_spread_and_are_stable() {
        let s = Shards::new(["DB", "DB_1", "DB_2"]);
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            let home = s.home(&format!("room-{i}"));
            counts[s.names().iter().position(|n| n == home).unwrap()] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
        // Fixed forever: rows live where these say.
        let pinned: Vec<&str> = ["a", "b", "c", "d", "e", "f"].map(|r| s.home(r)).to_vec();
        assert_eq!(pinned, PINNED);
    }

    #[test]
    fn adding_a_shard_moves_only_the_rooms_it_takes() {
        let three = Shards::new(["DB", "DB_1", "DB_2"]);
        let four = Shards::new(["DB", "DB_1", "DB_2", "DB_3"]);
        let mut moved = 0;
        for i in 0..4000 {
            let room = format!("room-{i}");
            let (before, after) = (three.home(&room), four.home(&room));
            if before != after {
                assert_eq!(after, "DB_3", "{room} moved between old shards");
                moved += 1;
            }
        }
        assert!((800..1200).contains(&moved), "{moved} of 4000 moved");
    }
}
