//! Whether an upsert creates first or looks the customer up first, learned from what the
//! organization turns out to hold.
//!
//! A row the host knows no Gladly id for is either a new customer or one Gladly already holds.
//! Creating first costs one request for a new customer and three for an existing one (the 409,
//! the lookup, the update); looking up first costs two either way. So creating first wins while
//! fewer than half the customers exist. Every upsert tells which case it met at no extra cost (a
//! 201 or a 409; a lookup that finds someone or no one), so the choice follows the recent share.
//!
//! Creating first is only safe where the match keys are values Gladly keeps unique (emails, and
//! MOBILE phones): a POST then cannot make a second profile for a customer who already has one.
//! Any other key (the external customer id, a home or office phone) is always looked up first.
//!
//! What was learned lives in the instance's memory, per sync: a host that keeps an instance for
//! several batches keeps the knowledge; a fresh instance starts again from "create first", and
//! one existing customer is enough to switch.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::matching::MatchKey;
use crate::profile::Profile;
use crate::settings::CreateFirst;

/// How many recent upserts the choice looks at.
const WINDOW: usize = 8;

/// What the last upserts of one sync met: `true` for a customer Gladly already held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recent {
    seen: Vec<bool>,
    next: usize,
}

impl Recent {
    /// Whether the next new-looking row should be created before any lookup: while fewer than
    /// half of the recent rows met an existing customer.
    pub fn prefers_create(&self) -> bool {
        let existing = self.seen.iter().filter(|e| **e).count();
        existing * 2 < self.seen.len().max(1)
    }

    /// Remember what one upsert met.
    pub fn observe(&mut self, existed: bool) {
        if self.seen.len() < WINDOW {
            self.seen.push(existed);
        } else if let Some(slot) = self.seen.get_mut(self.next) {
            *slot = existed;
        }
        self.next = (self.next + 1) % WINDOW;
    }
}

thread_local! {
    /// Per sync id. A component instance is single-threaded; this is its memory, not the host's.
    static LEARNED: RefCell<BTreeMap<String, Recent>> = const { RefCell::new(BTreeMap::new()) };
}

/// What this instance learned so far for `sync_id` (nothing yet: an empty window).
pub fn recall(sync_id: &str) -> Recent {
    LEARNED.with(|l| l.borrow().get(sync_id).cloned().unwrap_or_default())
}

/// Keep what a batch learned for the next batch this instance serves.
pub fn remember(sync_id: &str, recent: Recent) {
    LEARNED.with(|l| {
        l.borrow_mut().insert(sync_id.to_string(), recent);
    });
}

/// Whether creating `desired` before looking it up can never duplicate a customer: every match
/// key is a value Gladly keeps unique on this row.
pub fn create_is_safe(setting: CreateFirst, keys: &[MatchKey], desired: &Profile) -> bool {
    setting == CreateFirst::Auto
        && !keys.is_empty()
        && keys.iter().all(|k| match k {
            MatchKey::Email => true,
            // Only MOBILE numbers are unique per organization.
            MatchKey::Phone => desired.phones.first().is_some_and(|p| {
                p.kind
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("MOBILE"))
            }),
            MatchKey::ExternalCustomerId => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::PhoneEntry;

    fn after(observations: &[bool]) -> Recent {
        let mut r = Recent::default();
        for o in observations {
            r.observe(*o);
        }
        r
    }

    #[test]
    fn nothing_learned_creates_first() {
        assert!(Recent::default().prefers_create());
    }

    #[test]
    fn one_existing_customer_switches_a_fresh_window_to_lookups() {
        assert!(!after(&[true]).prefers_create());
    }

    #[test]
    fn half_existing_looks_up_first() {
        assert!(!after(&[true, false, true, false]).prefers_create());
        assert!(after(&[true, false, false, false]).prefers_create());
    }

    #[test]
    fn only_the_last_eight_count() {
        // Eight existing customers, then five new ones: 3 of the last 8 existed.
        let mut seen = vec![true; 8];
        seen.extend([false; 5]);
        assert!(after(&seen).prefers_create());
        // Four new ones only: 4 of 8 existed.
        let mut seen = vec![true; 8];
        seen.extend([false; 4]);
        assert!(!after(&seen).prefers_create());
    }

    #[test]
    fn what_a_batch_learned_is_kept_per_sync() {
        remember("sync-a", after(&[true]));
        assert!(!recall("sync-a").prefers_create());
        assert!(recall("sync-b").prefers_create());
    }

    fn phone(kind: Option<&str>) -> Profile {
        Profile {
            phones: vec![PhoneEntry {
                original: "+14155550100".into(),
                kind: kind.map(str::to_string),
                ..PhoneEntry::default()
            }],
            ..Profile::default()
        }
    }

    #[test]
    fn only_unique_keys_allow_creating_first() {
        let p = Profile::default();
        assert!(create_is_safe(CreateFirst::Auto, &[MatchKey::Email], &p));
        assert!(!create_is_safe(CreateFirst::Off, &[MatchKey::Email], &p));
        assert!(!create_is_safe(
            CreateFirst::Auto,
            &[MatchKey::ExternalCustomerId, MatchKey::Email],
            &p
        ));
        assert!(create_is_safe(
            CreateFirst::Auto,
            &[MatchKey::Email, MatchKey::Phone],
            &phone(Some("MOBILE"))
        ));
        assert!(!create_is_safe(
            CreateFirst::Auto,
            &[MatchKey::Email, MatchKey::Phone],
            &phone(Some("HOME"))
        ));
        assert!(!create_is_safe(
            CreateFirst::Auto,
            &[MatchKey::Phone],
            &phone(None)
        ));
    }
}
