//! The settings a host collects, their keys and defaults, and their parsed form [`Config`].
//!
//! Parsing collects every problem (never stops at the first) so an operator fixes a form in one
//! pass. What a `domain` or `username` value may be is Gladly's rule, kept in [`crate::account`];
//! this module files its refusals under the setting's key.

use phonenumber::country::Id;

use crate::matching::MatchKey;
use crate::model::{ConfigProblem, ResolvedConfig, Setting};
use crate::{account, phone};

/// Config key: the organization part of the Gladly host.
pub const KEY_DOMAIN: &str = "domain";
/// Config key: the API user's email (the Basic username).
pub const KEY_USERNAME: &str = "username";
/// Config key: `true` targets the `.gladly.qa` sandbox.
pub const KEY_SANDBOX: &str = "sandbox";
/// Config key: region for phone numbers without a country code.
pub const KEY_DEFAULT_REGION: &str = "default-region";
/// Config key: `string` or `typed` custom attribute values.
pub const KEY_ATTRIBUTE_MODE: &str = "custom-attribute-values";
/// Config key: whether this organization's PATCH merges `customAttributes` key by key or
/// replaces the map whole (Gladly does not document which).
pub const KEY_ATTRIBUTE_PATCH: &str = "custom-attributes-patch";
/// Config key: the ordered keys an upsert finds a customer by.
pub const KEY_MATCH_ON: &str = "match-on";
/// Config key: whether an upsert may create before it looks the customer up.
pub const KEY_CREATE_FIRST: &str = "create-first";
/// Every known key, in spec order.
pub const KNOWN_KEYS: [&str; 8] = [
    KEY_DOMAIN,
    KEY_USERNAME,
    KEY_SANDBOX,
    KEY_DEFAULT_REGION,
    KEY_ATTRIBUTE_MODE,
    KEY_ATTRIBUTE_PATCH,
    KEY_MATCH_ON,
    KEY_CREATE_FIRST,
];
/// Default of `match-on`: the email, as before the setting existed.
pub const DEFAULT_MATCH_ON: &str = "email";
/// Default of `default-region`.
pub const DEFAULT_REGION: &str = "US";
/// Default of `custom-attribute-values`.
pub const DEFAULT_ATTRIBUTE_MODE: &str = "string";
/// Default of `custom-attributes-patch`. Gladly does not document whether a PATCH merges
/// `customAttributes` or replaces the map, so the default assumes it replaces: one extra read
/// per changed attribute costs less than silently deleting what agents or other tools wrote.
pub const DEFAULT_ATTRIBUTE_PATCH: &str = "replace";
/// Default of `create-first`: learn from what the organization holds.
pub const DEFAULT_CREATE_FIRST: &str = "auto";

/// Whether an upsert of a row without a known Gladly id POSTs before it looks the customer up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateFirst {
    /// Create first while most customers turn out new, find first while most already exist;
    /// only where every match key is one Gladly keeps unique.
    Auto,
    /// Always look the customer up first (two requests for every new customer).
    Off,
}

impl CreateFirst {
    /// The setting value.
    pub fn as_str(self) -> &'static str {
        match self {
            CreateFirst::Auto => "auto",
            CreateFirst::Off => "off",
        }
    }
}

/// How the organization's PATCH treats `customAttributes`, which decides whether changing one
/// of our attributes needs a read first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributePatch {
    /// Keys not sent are kept: a changed attribute costs one PATCH, no read.
    Merge,
    /// The map is replaced whole: read the profile and send its keys with ours, so attributes
    /// written by agents or other integrations survive (one extra GET per change).
    Replace,
}

impl AttributePatch {
    /// The setting value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributePatch::Merge => "merge",
            AttributePatch::Replace => "replace",
        }
    }
}

/// How custom attribute values are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeMode {
    /// Every value as text (Gladly's own examples store numbers as strings).
    String,
    /// JSON numbers and booleans kept as they are.
    Typed,
}

impl AttributeMode {
    /// The setting value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeMode::String => "string",
            AttributeMode::Typed => "typed",
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Organization part, lower-cased: `acme` or `acme.us-1`.
    pub domain: String,
    /// The API user's email.
    pub username: String,
    /// Whether the sandbox (`.gladly.qa`) is targeted.
    pub sandbox: bool,
    /// Region for national phone numbers.
    pub default_region: Id,
    /// Custom attribute value handling.
    pub attribute_mode: AttributeMode,
    /// How PATCH treats `customAttributes` in this organization.
    pub attribute_patch: AttributePatch,
    /// The keys an upsert finds a customer by, in order.
    pub match_on: Vec<MatchKey>,
    /// Whether an upsert may create before looking up.
    pub create_first: CreateFirst,
}

impl Config {
    /// The one Gladly host requests go to.
    pub fn host(&self) -> String {
        account::host(&self.domain, self.sandbox)
    }

    /// `https://{host}`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.host())
    }

    /// Every setting with defaults filled in, in spec order.
    pub fn settings(&self) -> Vec<Setting> {
        let s = |key: &str, value: &str| Setting {
            key: key.to_string(),
            value: value.to_string(),
        };
        vec![
            s(KEY_DOMAIN, &self.domain),
            s(KEY_USERNAME, &self.username),
            s(KEY_SANDBOX, if self.sandbox { "true" } else { "false" }),
            s(KEY_DEFAULT_REGION, self.default_region.as_ref()),
            s(KEY_ATTRIBUTE_MODE, self.attribute_mode.as_str()),
            s(KEY_ATTRIBUTE_PATCH, self.attribute_patch.as_str()),
            s(KEY_MATCH_ON, &MatchKey::join(&self.match_on)),
            s(KEY_CREATE_FIRST, self.create_first.as_str()),
        ]
    }

    /// What `validate-config` reports for this configuration.
    pub fn resolved(&self) -> ResolvedConfig {
        let host = self.host();
        ResolvedConfig {
            egress_hosts: vec![host.clone()],
            base_url: self.base_url(),
            rate_limit_key: host,
            username: Some(self.username.clone()),
            settings: self.settings(),
        }
    }
}

/// Parses the settings alone (what `check-connection` and `map-row` need).
pub fn parse(settings: &[Setting]) -> Result<Config, Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for s in settings {
        if !KNOWN_KEYS.contains(&s.key.as_str()) {
            problems.push(ConfigProblem::new(
                s.key.clone(),
                format!("Unknown setting `{}`.", s.key),
                format!(
                    "Remove it; the known settings are {}.",
                    KNOWN_KEYS.join(", ")
                ),
            ));
        } else if seen.contains(&s.key.as_str()) {
            problems.push(ConfigProblem::new(
                s.key.clone(),
                format!("Setting `{}` is given more than once.", s.key),
                "Keep a single value.",
            ));
        } else {
            seen.push(&s.key);
        }
    }
    // First occurrence wins; an empty value counts as absent so forms can send blanks.
    let get = |key: &str| {
        settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
            .filter(|v| !v.is_empty())
    };

    let domain = match get(KEY_DOMAIN) {
        None => {
            problems.push(ConfigProblem::new(
                KEY_DOMAIN,
                "The Gladly organization domain is required.",
                "Enter the part of your Gladly address before .gladly.com, e.g. mycompany.",
            ));
            None
        }
        Some(raw) => account::check_domain(raw)
            .map_err(|r| problems.push(ConfigProblem::new(KEY_DOMAIN, r.message, r.fix)))
            .ok(),
    };

    let username = match get(KEY_USERNAME) {
        None => {
            problems.push(ConfigProblem::new(
                KEY_USERNAME,
                "The API user's email address is required.",
                "Enter the email address of the Gladly user that has the API User permission.",
            ));
            None
        }
        Some(raw) => account::check_username(raw)
            .map_err(|r| problems.push(ConfigProblem::new(KEY_USERNAME, r.message, r.fix)))
            .ok(),
    };

    let sandbox = match get(KEY_SANDBOX).map(|v| v.trim().to_ascii_lowercase()) {
        None => Some(false),
        Some(v) if v == "true" => Some(true),
        Some(v) if v == "false" => Some(false),
        Some(_) => {
            problems.push(ConfigProblem::new(
                KEY_SANDBOX,
                "sandbox must be true or false.",
                "Enter true to use your .gladly.qa sandbox, false for production.",
            ));
            None
        }
    };

    let default_region = match get(KEY_DEFAULT_REGION) {
        None => phone::parse_region(DEFAULT_REGION),
        Some(v) => {
            let region = phone::parse_region(v);
            if region.is_none() {
                problems.push(ConfigProblem::new(
                    KEY_DEFAULT_REGION,
                    format!("`{v}` is not a known phone region code."),
                    "Enter a two-letter ISO 3166 region code such as US, GB or DE.",
                ));
            }
            region
        }
    };

    let attribute_mode = one_of(
        get(KEY_ATTRIBUTE_MODE),
        AttributeMode::String,
        &[AttributeMode::String, AttributeMode::Typed],
        AttributeMode::as_str,
    )
    .or_else(|| {
        problems.push(ConfigProblem::new(
            KEY_ATTRIBUTE_MODE,
            "custom-attribute-values must be string or typed.",
            "Enter string (every value sent as text) or typed (numbers and booleans kept).",
        ));
        None
    });

    let attribute_patch = one_of(
        get(KEY_ATTRIBUTE_PATCH),
        AttributePatch::Replace,
        &[AttributePatch::Merge, AttributePatch::Replace],
        AttributePatch::as_str,
    )
    .or_else(|| {
        problems.push(ConfigProblem::new(
            KEY_ATTRIBUTE_PATCH,
            "custom-attributes-patch must be merge or replace.",
            "Enter merge (your organization keeps custom attributes a PATCH does not name) or \
             replace (it replaces the whole map; the plugin then reads each profile before \
             changing its attributes).",
        ));
        None
    });

    let match_on = match MatchKey::parse_list(get(KEY_MATCH_ON).unwrap_or(DEFAULT_MATCH_ON)) {
        Ok(keys) => Some(keys),
        Err(why) => {
            problems.push(ConfigProblem::new(
                KEY_MATCH_ON,
                format!("match-on must list match keys separated by commas: {why}."),
                "Enter one or more of externalCustomerId, email and phone, in the order to try \
                 them, for example externalCustomerId,email.",
            ));
            None
        }
    };

    let create_first = one_of(
        get(KEY_CREATE_FIRST),
        CreateFirst::Auto,
        &[CreateFirst::Auto, CreateFirst::Off],
        CreateFirst::as_str,
    )
    .or_else(|| {
        problems.push(ConfigProblem::new(
            KEY_CREATE_FIRST,
            "create-first must be auto or off.",
            "Enter auto (create new customers with one request, look them up first while \
             most of them already exist) or off (always look the customer up first).",
        ));
        None
    });

    match (
        domain,
        username,
        sandbox,
        default_region,
        attribute_mode,
        attribute_patch,
        match_on,
        create_first,
    ) {
        (
            Some(domain),
            Some(username),
            Some(sandbox),
            Some(default_region),
            Some(attribute_mode),
            Some(attribute_patch),
            Some(match_on),
            Some(create_first),
        ) if problems.is_empty() => Ok(Config {
            domain,
            username,
            sandbox,
            default_region,
            attribute_mode,
            attribute_patch,
            match_on,
            create_first,
        }),
        _ => Err(problems),
    }
}

/// A setting that takes one of a few words (case and surrounding spaces ignored): `default` when
/// absent, the choice whose word it is, or `None` for any other value.
fn one_of<T: Copy>(
    value: Option<&str>,
    default: T,
    choices: &[T],
    word: fn(T) -> &'static str,
) -> Option<T> {
    let Some(v) = value else {
        return Some(default);
    };
    let v = v.trim().to_ascii_lowercase();
    choices.iter().copied().find(|c| word(*c) == v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Vec<Setting> {
        pairs
            .iter()
            .map(|(k, v)| Setting {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    fn base() -> Vec<Setting> {
        settings(&[("domain", "acme"), ("username", "api@acme.com")])
    }

    #[test]
    fn hosts_for_production_cluster_and_sandbox() {
        let c = parse(&base()).unwrap();
        assert_eq!(c.host(), "acme.gladly.com");
        assert_eq!(c.base_url(), "https://acme.gladly.com");
        let mut s = settings(&[("domain", "acme.us-1"), ("username", "api@acme.com")]);
        assert_eq!(parse(&s).unwrap().host(), "acme.us-1.gladly.com");
        s.push(Setting {
            key: "sandbox".into(),
            value: "TRUE".into(),
        });
        assert_eq!(parse(&s).unwrap().host(), "acme.us-1.gladly.qa");
    }

    #[test]
    fn defaults_are_filled() {
        let c = parse(&base()).unwrap();
        let r = c.resolved();
        assert_eq!(r.egress_hosts, vec!["acme.gladly.com"]);
        assert_eq!(r.rate_limit_key, "acme.gladly.com");
        assert_eq!(r.username.as_deref(), Some("api@acme.com"));
        let kv: Vec<(String, String)> = r.settings.into_iter().map(|s| (s.key, s.value)).collect();
        assert_eq!(
            kv,
            vec![
                ("domain".into(), "acme".into()),
                ("username".into(), "api@acme.com".into()),
                ("sandbox".into(), "false".into()),
                ("default-region".into(), "US".into()),
                ("custom-attribute-values".into(), "string".into()),
                ("custom-attributes-patch".into(), "replace".into()),
                ("match-on".into(), "email".into()),
                ("create-first".into(), "auto".into()),
            ]
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let s = settings(&[
            ("domain", "https://acme.gladly.com"),
            ("username", "not-an-email"),
            ("sandbox", "maybe"),
            ("default-region", "ZZ"),
            ("custom-attribute-values", "numbers"),
            ("custom-attributes-patch", "sometimes"),
            ("match-on", "email,loyaltyId"),
            ("create-first", "always"),
            ("colour", "blue"),
        ]);
        let problems = parse(&s).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "colour",
            "domain",
            "username",
            "sandbox",
            "default-region",
            "custom-attribute-values",
            "custom-attributes-patch",
            "match-on",
            "create-first",
        ] {
            assert!(keys.contains(&k), "missing problem for {k}: {keys:?}");
        }
        assert!(
            problems
                .iter()
                .all(|p| !p.message.is_empty() && !p.fix.is_empty())
        );
    }

    #[test]
    fn missing_required_and_duplicates() {
        let problems = parse(&[]).unwrap_err();
        assert_eq!(problems.len(), 2);
        let mut s = base();
        s.push(Setting {
            key: "domain".into(),
            value: "other".into(),
        });
        assert_eq!(parse(&s).unwrap_err()[0].key, "domain");
    }

    #[test]
    fn region_and_typed_mode() {
        let mut s = base();
        s.push(Setting {
            key: "default-region".into(),
            value: "gb".into(),
        });
        s.push(Setting {
            key: "custom-attribute-values".into(),
            value: "typed".into(),
        });
        let c = parse(&s).unwrap();
        assert_eq!(c.default_region, Id::GB);
        assert_eq!(c.attribute_mode, AttributeMode::Typed);
    }

    #[test]
    fn domain_refusals_are_filed_under_domain() {
        let s = settings(&[
            ("domain", "https://mycompany.gladly.com"),
            ("username", "api@acme.com"),
        ]);
        let problems = parse(&s).unwrap_err();
        assert_eq!(problems.len(), 1);
        let e = &problems[0];
        assert_eq!(e.key, "domain");
        assert!(e.message.contains("organization part"));
        assert!(e.fix.contains("`mycompany`"));
    }
}
