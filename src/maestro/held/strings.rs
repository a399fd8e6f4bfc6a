//! A stored work's labels or annotations, kept small.
//!
//! The operator's status cache holds one [`HeldWork`](super::HeldWork)
//! per bundle for its whole life, and each carries a handful of labels
//! and annotations. As `BTreeMap<String, String>` those cost a tree node
//! (about 550 bytes, mostly empty) plus an allocation per key and value:
//! about 1.4 KB per bundle, the largest part of the cache at 10,000
//! bundles. Here they are one text and one index, two allocations, and
//! lookups over a few sorted keys stay cheap.

use std::collections::BTreeMap;
use std::fmt;

/// String keys and values, sorted by key, each key once.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StringMap {
    /// Every key and value, in order, end to end.
    text: Box<str>,
    /// Where each key and each value ends in `text`: two per entry.
    ends: Box<[usize]>,
}

impl StringMap {
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let found = self.keys_search(key).ok()?;
        Some(self.value(found))
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.len()).map(|i| (self.key(i), self.value(i)))
    }

    fn keys_search(&self, key: &str) -> Result<usize, usize> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.key(mid).cmp(key) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(low)
    }

    fn span(&self, slot: usize) -> &str {
        let start = if slot == 0 { 0 } else { self.ends[slot - 1] };
        &self.text[start..self.ends[slot]]
    }

    fn key(&self, entry: usize) -> &str {
        self.span(2 * entry)
    }

    fn value(&self, entry: usize) -> &str {
        self.span(2 * entry + 1)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for StringMap {
    /// Sorted by key; of two entries with one key, the later wins, as
    /// inserting them into a map would.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> StringMap {
        let entries: Vec<(K, V)> = entries.into_iter().collect();
        let mut sorted: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in &entries {
            sorted.insert(k.as_ref(), v.as_ref());
        }
        let mut text = String::new();
        let mut ends = Vec::with_capacity(sorted.len() * 2);
        for (k, v) in sorted {
            text.push_str(k);
            ends.push(text.len());
            text.push_str(v);
            ends.push(text.len());
        }
        StringMap {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

impl fmt::Debug for StringMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests;
