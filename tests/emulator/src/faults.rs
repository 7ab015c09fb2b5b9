//! Seeded fault injection: which request gets which fault.

use std::time::Duration;

use http::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What goes wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer 429 without touching the store.
    Status429,
    /// Answer with this 5xx status without touching the store (values outside 500..=599 become 500).
    Status5xx(u16),
    /// Wait this long, then handle the request normally (meant to outlast the client's timeout).
    Slow(Duration),
    /// Close the connection without applying or answering.
    DropBeforeApply,
    /// Apply the request to the store, then close the connection without answering.
    DropAfterApply,
    /// Handle the request normally, then answer 200 (201 for a create) with a body that is not JSON.
    MalformedBody,
}

/// When a rule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Each matching request fails with this probability (0.0..=1.0), drawn from the run's seed.
    Probability(f64),
    /// The matching requests at these 1-based positions fail, counted from when the rules were set.
    Ordinals(Vec<u64>),
}

/// One fault-injection rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// The fault to inject.
    pub fault: Fault,
    /// When it fires.
    pub trigger: Trigger,
    /// Only requests with this method match (any method when `None`).
    pub method: Option<Method>,
    /// Only requests whose path starts with this match (any path when `None`).
    pub path_prefix: Option<String>,
}

impl FaultRule {
    /// A rule firing with probability `p` on every request.
    pub fn probability(fault: Fault, p: f64) -> Self {
        FaultRule {
            fault,
            trigger: Trigger::Probability(p),
            method: None,
            path_prefix: None,
        }
    }

    /// A rule firing on the matching requests at these 1-based positions.
    pub fn on_requests(fault: Fault, ordinals: impl IntoIterator<Item = u64>) -> Self {
        FaultRule {
            fault,
            trigger: Trigger::Ordinals(ordinals.into_iter().collect()),
            method: None,
            path_prefix: None,
        }
    }

    /// Restricts the rule to one method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Restricts the rule to paths starting with `prefix`.
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

/// The active rules and how many requests each has seen.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    rules: Vec<FaultRule>,
    seen: Vec<u64>,
    seed: u64,
}

impl FaultEngine {
    pub(crate) fn new(rules: Vec<FaultRule>, seed: u64) -> Self {
        let seen = vec![0; rules.len()];
        FaultEngine { rules, seen, seed }
    }

    /// Installs new rules; their counters start again from zero.
    pub(crate) fn replace(&mut self, rules: Vec<FaultRule>) {
        self.seen = vec![0; rules.len()];
        self.rules = rules;
    }

    /// Picks the fault for one request: the first matching rule that fires.
    pub(crate) fn decide(&mut self, method: &Method, path: &str) -> Option<Fault> {
        let mut chosen = None;
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.matches(method, path) {
                continue;
            }
            // Every matching rule counts the request, even when an earlier rule already fired,
            // so a rule's positions do not depend on the other rules.
            self.seen[index] += 1;
            let position = self.seen[index];
            let fires = match &rule.trigger {
                Trigger::Ordinals(list) => list.contains(&position),
                Trigger::Probability(p) => draw(self.seed, index as u64, position) < *p,
            };
            if fires && chosen.is_none() {
                chosen = Some(rule.fault.clone());
            }
        }
        chosen
    }
}

/// A uniform draw in [0, 1) that depends only on (seed, rule, position), so a run's faults
/// do not depend on how concurrent requests interleave inside the emulator.
fn draw(seed: u64, rule: u64, position: u64) -> f64 {
    let key = splitmix(seed ^ splitmix(rule.wrapping_add(1) ^ splitmix(position)));
    StdRng::seed_from_u64(key).random::<f64>()
}

/// SplitMix64's output function: a well-mixed 64-bit value from `x`.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(seed: u64) -> Vec<bool> {
        let mut e = FaultEngine::new(vec![FaultRule::probability(Fault::Status429, 0.5)], seed);
        (0..64)
            .map(|_| e.decide(&Method::GET, "/x").is_some())
            .collect()
    }

    #[test]
    fn same_seed_same_faults() {
        assert_eq!(pattern(7), pattern(7));
        assert_ne!(pattern(7), pattern(8));
        let hits = pattern(7).iter().filter(|b| **b).count();
        assert!((10..=54).contains(&hits), "{hits}");
    }

    #[test]
    fn ordinals_count_matching_requests_only() {
        let rule = FaultRule::on_requests(Fault::DropBeforeApply, [2]).method(Method::POST);
        let mut e = FaultEngine::new(vec![rule], 1);
        assert_eq!(e.decide(&Method::GET, "/a"), None);
        assert_eq!(e.decide(&Method::POST, "/a"), None);
        assert_eq!(e.decide(&Method::GET, "/a"), None);
        assert_eq!(e.decide(&Method::POST, "/a"), Some(Fault::DropBeforeApply));
        assert_eq!(e.decide(&Method::POST, "/a"), None);
    }

    #[test]
    fn path_prefix_filters() {
        let rule =
            FaultRule::probability(Fault::Status5xx(503), 1.0).path_prefix("/api/v1/customer");
        let mut e = FaultEngine::new(vec![rule], 1);
        assert_eq!(e.decide(&Method::GET, "/api/v1/organization"), None);
        assert_eq!(
            e.decide(&Method::GET, "/api/v1/customer-profiles/x"),
            Some(Fault::Status5xx(503))
        );
    }
}
