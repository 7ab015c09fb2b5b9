//! Lookup tables from a searchable value (a normalized email or phone, an external id) to the
//! profiles holding it, so a find or a uniqueness check is a hash lookup instead of a scan of
//! every profile: the benchmarks create thousands of profiles per organization, and a scan per
//! request made the emulator, not the client under test, the bottleneck.

use std::collections::{HashMap, HashSet};

/// One value → the ids of the profiles holding it.
#[derive(Debug, Default)]
pub(crate) struct ValueIndex {
    by_value: HashMap<String, HashSet<String>>,
}

impl ValueIndex {
    /// Records that profile `id` holds `value`.
    pub(crate) fn insert(&mut self, value: &str, id: &str) {
        self.by_value
            .entry(value.to_string())
            .or_default()
            .insert(id.to_string());
    }

    /// Forgets that profile `id` holds `value`.
    pub(crate) fn remove(&mut self, value: &str, id: &str) {
        if let Some(ids) = self.by_value.get_mut(value) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_value.remove(value);
            }
        }
    }

    /// The ids of the profiles holding `value`, in no particular order.
    pub(crate) fn ids<'a>(&'a self, value: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.by_value
            .get(value)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_and_lookup() {
        let mut ix = ValueIndex::default();
        ix.insert("x@y.com", "a");
        ix.insert("x@y.com", "b");
        ix.insert("x@y.com", "a");
        let mut ids: Vec<_> = ix.ids("x@y.com").collect();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        ix.remove("x@y.com", "a");
        assert_eq!(ix.ids("x@y.com").collect::<Vec<_>>(), ["b"]);
        ix.remove("x@y.com", "b");
        assert_eq!(ix.ids("x@y.com").count(), 0);
        assert!(ix.by_value.is_empty(), "empty sets are dropped");
        ix.remove("never@y.com", "a");
    }
}
