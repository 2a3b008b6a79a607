//! Label values from outside (service and state names from ring files, command lines from
//! /proc) kept bounded: each value cut to a length, and a set of them capped, with what is
//! past the cap folded into one [`OTHER`] value. The encoder escapes `\`, `"` and newlines.

use std::collections::HashMap;

/// The label value that stands for every value past a cap.
pub const OTHER: &str = "(other)";

/// `value` cut to at most `max` bytes, on a character boundary.
pub fn truncated(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// At most `cap` distinct label values, each at most `max_len` bytes, with the data past
/// the cap under [`OTHER`]. Values are `V`s (per-label data) kept in a map.
#[derive(Debug, Clone)]
pub struct Capped<V> {
    cap: usize,
    max_len: usize,
    values: HashMap<String, V>,
    /// Times a value past the cap was folded into [`OTHER`].
    pub overflowed: u64,
}

impl<V: Default> Capped<V> {
    /// An empty set holding at most `cap` values of at most `max_len` bytes each (plus
    /// [`OTHER`]).
    pub fn new(cap: usize, max_len: usize) -> Capped<V> {
        Capped {
            cap,
            max_len,
            values: HashMap::new(),
            overflowed: 0,
        }
    }

    /// The data for `label`: its own while there is room, [`OTHER`]'s past the cap.
    pub fn entry(&mut self, label: &str) -> &mut V {
        let label = truncated(label, self.max_len);
        // Two lookups rather than `entry(label.to_owned())`: no allocation for a value
        // already present, which is nearly every call.
        if self.values.contains_key(label) {
            return self.values.get_mut(label).expect("just found");
        }
        let key = if self.values.len() < self.cap {
            label
        } else {
            self.overflowed += 1;
            OTHER
        };
        self.values.entry(key.to_owned()).or_default()
    }

    /// The values and their data, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of distinct values (including [`OTHER`] once used).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Forgets every value (the overflow count stays).
    pub fn clear(&mut self) {
        self.values.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_on_a_character_boundary() {
        assert_eq!(truncated("abc", 5), "abc");
        assert_eq!(truncated("abcdef", 3), "abc");
        assert_eq!(truncated("aé", 2), "a", "é is two bytes");
    }

    #[test]
    fn past_the_cap_everything_goes_to_other_and_is_counted() {
        let mut c: Capped<u64> = Capped::new(2, 4);
        *c.entry("a") += 1;
        *c.entry("bbbbbb") += 1;
        *c.entry("bbbbzz") += 1; // the same value once cut
        *c.entry("c") += 1;
        *c.entry("d") += 1;
        *c.entry("a") += 1;
        let mut got: Vec<_> = c.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        got.sort();
        assert_eq!(
            got,
            [("(other)".into(), 2), ("a".into(), 2), ("bbbb".into(), 2)]
        );
        assert_eq!(c.overflowed, 2);
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.overflowed, 2);
    }
}
