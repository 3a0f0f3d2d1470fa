//! In-memory keys with a time to live, for state that is worth nothing after a few seconds:
//! presence, cursors, typing indicators. Never written to SQLite and never replicated; it lives
//! as long as the actor's instance (a Durable Object that is evicted starts empty, and clients
//! re-announce themselves).
//!
//! Time is passed in (`now_ms`, from [`Clock::now_ms`](crate::Clock::now_ms)) because a
//! Worker has no `std::time`. Expired entries are removed lazily when read and by
//! [`MemoryStore::purge`]; [`MemoryStore::next_expiry_ms`] tells the host when the next one is
//! due, e.g. to broadcast "left" to the room.
//!
//! ```
//! use nanotype::actor::MemoryStore;
//! use serde_json::json;
//!
//! let store = MemoryStore::new();
//! let now = 1_000;
//! store.set("presence:room1:ana", json!({"cursor": [3, 7]}), 30_000, now)?;
//! store.set("presence:room1:bo", json!({"cursor": [1, 1]}), 5_000, now)?;
//! store.set("presence:room2:cy", json!(null), 30_000, now)?;
//!
//! let here: Vec<String> = store
//!     .entries_with_prefix("presence:room1:", now + 10_000)
//!     .into_iter()
//!     .map(|(key, _)| key)
//!     .collect();
//! assert_eq!(here, ["presence:room1:ana"]); // bo's entry expired
//! # Ok::<(), nanotype::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};

/// Bounds on what a [`MemoryStore`] holds, so that a misbehaving client cannot exhaust the
/// actor's memory (a Durable Object has 128 MB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Entries held at once. When full, setting a new key evicts the entry closest to expiry.
    pub max_entries: usize,
    /// Length of a key in bytes.
    pub max_key_bytes: usize,
    /// Size of a value as serialized JSON, in bytes.
    pub max_value_bytes: usize,
}

impl Default for MemoryLimits {
    /// 10,000 entries, 512-byte keys, 16 KiB values.
    fn default() -> MemoryLimits {
        MemoryLimits {
            max_entries: 10_000,
            max_key_bytes: 512,
            max_value_bytes: 16 * 1024,
        }
    }
}

struct Entry {
    value: serde_json::Value,
    expires_at_ms: i64,
}

#[derive(Default)]
struct Entries {
    by_key: BTreeMap<String, Entry>,
    // (expiry, key): the soonest to expire first, for purging and eviction.
    by_expiry: BTreeSet<(i64, String)>,
}

impl Entries {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.by_key.remove(key)?;
        self.by_expiry
            .remove(&(entry.expires_at_ms, key.to_owned()));
        Some(entry)
    }

    /// Removes `key` if it has expired at `now_ms`; returns whether it is (still) live.
    fn live(&mut self, key: &str, now_ms: i64) -> bool {
        match self.by_key.get(key) {
            Some(e) if e.expires_at_ms > now_ms => true,
            Some(_) => {
                self.remove(key);
                false
            }
            None => false,
        }
    }

    fn purge(&mut self, now_ms: i64) -> usize {
        let mut n = 0;
        while let Some((at, _)) = self.by_expiry.first() {
            if *at > now_ms {
                break;
            }
            let (_, key) = self.by_expiry.pop_first().expect("checked above");
            self.by_key.remove(&key);
            n += 1;
        }
        n
    }
}

/// Keys with a TTL, in memory only. Single-threaded: use it from `&self` in a Durable Object.
///
/// Every entry expires at `now_ms + ttl_ms` of its last [`set`](MemoryStore::set) or
/// [`touch`](MemoryStore::touch); an expired entry is never returned.
#[derive(Default)]
pub struct MemoryStore {
    limits: MemoryLimits,
    entries: RefCell<Entries>,
}

impl MemoryStore {
    /// A store with [`MemoryLimits::default`].
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store with the given limits.
    pub fn with_limits(limits: MemoryLimits) -> MemoryStore {
        MemoryStore {
            limits,
            entries: RefCell::default(),
        }
    }

    /// The store's limits.
    pub fn limits(&self) -> MemoryLimits {
        self.limits
    }

    /// Set `key` to `value` until `now_ms + ttl_ms`, replacing any earlier value and TTL.
    ///
    /// When the store is full (after dropping expired entries) and `key` is new, the entry
    /// closest to expiry is evicted and its key returned, so the host can tell the room (e.g.
    /// that a user's presence is gone). [`Error::Rejected`] when `ttl_ms` is 0 or the key or
    /// value is over its limit; the store is then unchanged.
    pub fn set(
        &self,
        key: &str,
        value: serde_json::Value,
        ttl_ms: u64,
        now_ms: i64,
    ) -> Result<Option<String>> {
        if ttl_ms == 0 {
            return Err(Error::Rejected(format!(
                "memory store: key `{key}` was set with a TTL of 0 ms; give a TTL > 0, or remove the key"
            )));
        }
        if key.len() > self.limits.max_key_bytes {
            return Err(Error::Rejected(format!(
                "memory store: a key of {} bytes is over the limit of {} bytes; use a shorter key (e.g. an id)",
                key.len(),
                self.limits.max_key_bytes
            )));
        }
        let size = serialized_len(&value);
        if size > self.limits.max_value_bytes {
            return Err(Error::Rejected(format!(
                "memory store: the value for key `{key}` is {size} bytes as JSON, over the limit of {} bytes; \
                 store less (an id or a position, not a document) or raise MemoryLimits::max_value_bytes",
                self.limits.max_value_bytes
            )));
        }
        let expires_at_ms = now_ms.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));

        let mut entries = self.entries.borrow_mut();
        let mut evicted = None;
        if entries.remove(key).is_none() && entries.by_key.len() >= self.limits.max_entries {
            entries.purge(now_ms);
            if entries.by_key.len() >= self.limits.max_entries {
                if let Some((_, soonest)) = entries.by_expiry.first().cloned() {
                    entries.remove(&soonest);
                    evicted = Some(soonest);
                }
            }
        }
        if self.limits.max_entries == 0 {
            return Ok(evicted);
        }
        entries.by_expiry.insert((expires_at_ms, key.to_owned()));
        entries.by_key.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at_ms,
            },
        );
        Ok(evicted)
    }

    /// The value of `key`, unless it is absent or has expired at `now_ms`.
    pub fn get(&self, key: &str, now_ms: i64) -> Option<serde_json::Value> {
        let mut entries = self.entries.borrow_mut();
        if !entries.live(key, now_ms) {
            return None;
        }
        entries.by_key.get(key).map(|e| e.value.clone())
    }

    /// Extend a live entry's life to `now_ms + ttl_ms` without resending its value (a presence
    /// heartbeat). Returns false when the key is absent or expired.
    pub fn touch(&self, key: &str, ttl_ms: u64, now_ms: i64) -> bool {
        let mut entries = self.entries.borrow_mut();
        if ttl_ms == 0 || !entries.live(key, now_ms) {
            return false;
        }
        let Some(entry) = entries.remove(key) else {
            return false;
        };
        let expires_at_ms = now_ms.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        entries.by_expiry.insert((expires_at_ms, key.to_owned()));
        entries.by_key.insert(
            key.to_owned(),
            Entry {
                value: entry.value,
                expires_at_ms,
            },
        );
        true
    }

    /// Remove `key`. Returns whether it was held (expired or not).
    pub fn remove(&self, key: &str) -> bool {
        self.entries.borrow_mut().remove(key).is_some()
    }

    /// Every live entry whose key starts with `prefix`, in key order: e.g. all presence in a
    /// room with the prefix `"presence:<room>:"`. Expired entries met on the way are removed.
    pub fn entries_with_prefix(
        &self,
        prefix: &str,
        now_ms: i64,
    ) -> Vec<(String, serde_json::Value)> {
        let mut entries = self.entries.borrow_mut();
        let mut live = Vec::new();
        let mut expired = Vec::new();
        for (key, entry) in entries.by_key.range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        )) {
            if !key.starts_with(prefix) {
                break;
            }
            if entry.expires_at_ms > now_ms {
                live.push((key.clone(), entry.value.clone()));
            } else {
                expired.push(key.clone());
            }
        }
        for key in expired {
            entries.remove(&key);
        }
        live
    }

    /// Remove every entry expired at `now_ms`; returns how many.
    pub fn purge(&self, now_ms: i64) -> usize {
        self.entries.borrow_mut().purge(now_ms)
    }

    /// When the next entry expires (ms since the epoch), to schedule a purge.
    pub fn next_expiry_ms(&self) -> Option<i64> {
        self.entries.borrow().by_expiry.first().map(|(at, _)| *at)
    }

    /// Live entries at `now_ms` (expired ones are purged first).
    pub fn len(&self, now_ms: i64) -> usize {
        let mut entries = self.entries.borrow_mut();
        entries.purge(now_ms);
        entries.by_key.len()
    }

    /// Whether no entry is live at `now_ms`.
    pub fn is_empty(&self, now_ms: i64) -> bool {
        self.len(now_ms) == 0
    }

    /// Drop every entry.
    pub fn clear(&self) {
        *self.entries.borrow_mut() = Entries::default();
    }
}

/// The length of `value` as compact JSON, without building the string.
fn serialized_len(value: &serde_json::Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` to an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_get_and_expiry() {
        let s = MemoryStore::new();
        s.set("a", json!(1), 100, 1_000).unwrap();
        assert_eq!(s.get("a", 1_000), Some(json!(1)));
        assert_eq!(s.get("a", 1_099), Some(json!(1)));
        // Expiry is exclusive: at now + ttl the entry is gone, and removed lazily.
        assert_eq!(s.get("a", 1_100), None);
        assert_eq!(s.entries.borrow().by_key.len(), 0);
        assert_eq!(s.entries.borrow().by_expiry.len(), 0);
    }

    #[test]
    fn set_replaces_value_and_ttl() {
        let s = MemoryStore::new();
        s.set("a", json!(1), 100, 0).unwrap();
        s.set("a", json!(2), 1_000, 50).unwrap();
        assert_eq!(s.get("a", 500), Some(json!(2)));
        assert_eq!(s.entries.borrow().by_expiry.len(), 1);
        assert_eq!(s.next_expiry_ms(), Some(1_050));
    }

    #[test]
    fn touch_extends_life() {
        let s = MemoryStore::new();
        s.set("a", json!("x"), 100, 0).unwrap();
        assert!(s.touch("a", 100, 90));
        assert_eq!(s.get("a", 150), Some(json!("x")));
        assert!(!s.touch("a", 100, 190));
        assert!(!s.touch("missing", 100, 0));
    }

    #[test]
    fn purge_counts_and_next_expiry() {
        let s = MemoryStore::new();
        for i in 0..10 {
            s.set(&format!("k{i}"), json!(i), 10 * (i + 1), 0).unwrap();
        }
        assert_eq!(s.next_expiry_ms(), Some(10));
        assert_eq!(s.purge(35), 3);
        assert_eq!(s.len(35), 7);
        assert_eq!(s.next_expiry_ms(), Some(40));
        assert_eq!(s.purge(1_000), 7);
        assert!(s.is_empty(1_000));
        assert_eq!(s.next_expiry_ms(), None);
    }

    #[test]
    fn prefix_listing_is_ordered_and_skips_expired() {
        let s = MemoryStore::new();
        s.set("p:r1:b", json!(2), 100, 0).unwrap();
        s.set("p:r1:a", json!(1), 100, 0).unwrap();
        s.set("p:r1:c", json!(3), 10, 0).unwrap();
        s.set("p:r10:x", json!(9), 100, 0).unwrap();
        s.set("p:r2:a", json!(4), 100, 0).unwrap();
        s.set("p:r0", json!(0), 100, 0).unwrap();
        let got = s.entries_with_prefix("p:r1:", 50);
        assert_eq!(
            got,
            vec![("p:r1:a".into(), json!(1)), ("p:r1:b".into(), json!(2))]
        );
        // The expired entry met on the way was removed.
        assert!(!s.remove("p:r1:c"));
        assert_eq!(s.entries_with_prefix("", 50).len(), 5);
        assert!(s.entries_with_prefix("q", 50).is_empty());
    }

    #[test]
    fn full_store_evicts_the_soonest_to_expire() {
        let s = MemoryStore::with_limits(MemoryLimits {
            max_entries: 3,
            ..MemoryLimits::default()
        });
        assert_eq!(s.set("a", json!(1), 300, 0).unwrap(), None);
        assert_eq!(s.set("b", json!(2), 100, 0).unwrap(), None);
        assert_eq!(s.set("c", json!(3), 200, 0).unwrap(), None);
        // Replacing a held key never evicts.
        assert_eq!(s.set("a", json!(10), 300, 0).unwrap(), None);
        assert_eq!(s.set("d", json!(4), 50, 0).unwrap(), Some("b".into()));
        assert_eq!(s.get("b", 0), None);
        assert_eq!(s.get("d", 0), Some(json!(4)));
        assert_eq!(s.len(0), 3);
        // Expired entries make room before anything live is evicted.
        assert_eq!(s.set("e", json!(5), 1_000, 60).unwrap(), None);
        assert_eq!(s.get("c", 60), Some(json!(3)));
        assert_eq!(s.len(60), 3);
    }

    #[test]
    fn oversized_values_and_keys_are_rejected_and_change_nothing() {
        let s = MemoryStore::with_limits(MemoryLimits {
            max_value_bytes: 10,
            max_key_bytes: 4,
            ..MemoryLimits::default()
        });
        s.set("k", json!("short"), 100, 0).unwrap();
        let err = s.set("k", json!("much too long"), 100, 0).unwrap_err();
        assert!(matches!(err, Error::Rejected(_)));
        let msg = err.to_string();
        assert!(msg.contains("15 bytes"), "{msg}");
        assert!(msg.contains("limit of 10 bytes"), "{msg}");
        assert_eq!(s.get("k", 0), Some(json!("short")));
        let err = s.set("toolong", json!(1), 100, 0).unwrap_err();
        assert!(err.to_string().contains("key of 7 bytes"), "{err}");
        assert!(s.set("k", json!(1), 0, 0).is_err());
    }

    #[test]
    fn serialized_len_matches_to_string() {
        let v = json!({"a": [1, 2.5, "é"], "b": null});
        assert_eq!(serialized_len(&v), serde_json::to_string(&v).unwrap().len());
    }
}
