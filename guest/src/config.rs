//! Parsing and offline validation of the settings, the sync mode and the mapping.
//!
//! Every problem is collected (never stop at the first) so an operator fixes a form in one pass.
//! The domain rules matter for safety as well as usability: the host name derived here is the only
//! host the plugin declares for egress, so it must always be a Gladly host.

use phonenumber::country::Id;

use crate::mapping::Plan;
use crate::spec::mode_support;
use crate::types::{
    ConfigProblem, DestError, ErrorCategory, ErrorCode, FieldMapping, ResolvedConfig, Setting,
    SyncMode,
};
use crate::{email, phone};

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
/// Every known key, in spec order.
pub const KNOWN_KEYS: [&str; 6] = [
    KEY_DOMAIN,
    KEY_USERNAME,
    KEY_SANDBOX,
    KEY_DEFAULT_REGION,
    KEY_ATTRIBUTE_MODE,
    KEY_ATTRIBUTE_PATCH,
];
/// Default of `default-region`.
pub const DEFAULT_REGION: &str = "US";
/// Default of `custom-attribute-values`.
pub const DEFAULT_ATTRIBUTE_MODE: &str = "string";
/// Default of `custom-attributes-patch`.
pub const DEFAULT_ATTRIBUTE_PATCH: &str = "merge";

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
}

impl Config {
    /// The one Gladly host requests go to.
    pub fn host(&self) -> String {
        let suffix = if self.sandbox {
            "gladly.qa"
        } else {
            "gladly.com"
        };
        format!("{}.{suffix}", self.domain)
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

/// Full offline validation: settings, mode and mapping, every problem at once.
pub fn validate(
    settings: &[Setting],
    mode: SyncMode,
    mapping: &[FieldMapping],
) -> Result<(Config, Plan), Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    let config = parse(settings).map_err(|p| problems.extend(p)).ok();
    let support = mode_support(mode);
    if !support.supported {
        problems.push(ConfigProblem::new(
            "mode",
            format!(
                "Sync mode {} is not supported: {}",
                mode.name(),
                support.reason
            ),
            "Choose upsert, insert or update.",
        ));
    }
    let (plan, mapping_problems) = Plan::compile_partial(mapping);
    problems.extend(mapping_problems);
    problems.extend(plan.check_mode(mode));
    match config {
        Some(c) if problems.is_empty() => Ok((c, plan)),
        _ => Err(problems),
    }
}

/// The `invalid-config` error for a batch or call refused before any request.
pub fn invalid_config(problems: &[ConfigProblem]) -> DestError {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {} Fix: {}", p.key, p.message, p.fix))
        .collect();
    let mut e = DestError::new(
        ErrorCode::InvalidConfig,
        ErrorCategory::FixConfig,
        format!(
            "The configuration is invalid; nothing was sent. {}",
            lines.join(" | ")
        ),
    );
    e.field = problems.first().map(|p| p.key.clone());
    e
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
        Some(raw) => check_domain(raw).map_err(|p| problems.push(p)).ok(),
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
        Some(raw) => match email::validate(raw) {
            Ok(u) if !u.contains(':') => Some(u),
            _ => {
                problems.push(ConfigProblem::new(
                    KEY_USERNAME,
                    "The username must be the email address of the Gladly API user.",
                    "Enter that user's email address, e.g. api-user@mycompany.com.",
                ));
                None
            }
        },
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

    let attribute_mode = match get(KEY_ATTRIBUTE_MODE).map(|v| v.trim().to_ascii_lowercase()) {
        None => Some(AttributeMode::String),
        Some(v) if v == "string" => Some(AttributeMode::String),
        Some(v) if v == "typed" => Some(AttributeMode::Typed),
        Some(_) => {
            problems.push(ConfigProblem::new(
                KEY_ATTRIBUTE_MODE,
                "custom-attribute-values must be string or typed.",
                "Enter string (every value sent as text) or typed (numbers and booleans kept).",
            ));
            None
        }
    };

    let attribute_patch = match get(KEY_ATTRIBUTE_PATCH).map(|v| v.trim().to_ascii_lowercase()) {
        None => Some(AttributePatch::Merge),
        Some(v) if v == "merge" => Some(AttributePatch::Merge),
        Some(v) if v == "replace" => Some(AttributePatch::Replace),
        Some(_) => {
            problems.push(ConfigProblem::new(
                KEY_ATTRIBUTE_PATCH,
                "custom-attributes-patch must be merge or replace.",
                "Enter merge (your organization keeps custom attributes a PATCH does not name) or \
                 replace (it replaces the whole map; the plugin then reads each profile before \
                 changing its attributes).",
            ));
            None
        }
    };

    match (domain, username, sandbox, default_region, attribute_mode, attribute_patch) {
        (
            Some(domain),
            Some(username),
            Some(sandbox),
            Some(default_region),
            Some(attribute_mode),
            Some(attribute_patch),
        ) if problems.is_empty() => Ok(Config {
            domain,
            username,
            sandbox,
            default_region,
            attribute_mode,
            attribute_patch,
        }),
        _ => Err(problems),
    }
}

/// The problem for a domain that is not just the organization part, with a derived fix.
fn domain_problem(raw: &str, what: &str, suggestion: Option<(String, bool)>) -> ConfigProblem {
    let message = format!(
        "Domain check failed: `{raw}` {what}. Only the organization part of your Gladly address \
         belongs here (for https://mycompany.gladly.com that is mycompany)."
    );
    let fix = match suggestion {
        Some((org, true)) => format!("Enter `{org}` and set sandbox to true."),
        Some((org, false)) => format!("Enter `{org}`."),
        None => "Enter the part of your Gladly address before .gladly.com, e.g. mycompany or \
                 mycompany.us-1."
            .to_string(),
    };
    ConfigProblem::new(KEY_DOMAIN, message, fix)
}

/// From a host name, the organization part and whether it is a sandbox host.
fn org_from_host(host: &str) -> Option<(String, bool)> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let (org, sandbox) = if let Some(org) = host.strip_suffix(".gladly.com") {
        (org, false)
    } else if let Some(org) = host.strip_suffix(".gladly.qa") {
        (org, true)
    } else {
        return None;
    };
    check_labels(org).ok().map(|o| (o, sandbox))
}

/// Checks the `domain` setting; returns the lower-cased organization part.
pub fn check_domain(raw: &str) -> Result<String, ConfigProblem> {
    if raw.chars().any(char::is_whitespace) {
        let trimmed = raw.trim();
        let suggestion = if trimmed.chars().any(char::is_whitespace) {
            None
        } else {
            check_domain(trimmed).ok().map(|o| (o, false))
        };
        return Err(domain_problem(raw, "contains spaces", suggestion));
    }
    if raw.contains("://") {
        let host = url::Url::parse(raw)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        let suggestion = host.as_deref().and_then(org_from_host);
        let what = if suggestion.is_some() {
            "is a full URL"
        } else {
            "is a URL, and not one of a Gladly host"
        };
        return Err(domain_problem(raw, what, suggestion));
    }
    if raw.contains('@') {
        return Err(domain_problem(raw, "contains a user name (@)", None));
    }
    if let Some(pos) = raw.find(['/', '?', '#']) {
        let before = raw.get(..pos).unwrap_or_default();
        return Err(domain_problem(raw, "contains a path", suggest(before)));
    }
    if let Some(pos) = raw.find(':') {
        let before = raw.get(..pos).unwrap_or_default();
        return Err(domain_problem(raw, "contains a port", suggest(before)));
    }
    let lower = raw.to_ascii_lowercase();
    if lower.ends_with(".gladly.com") || lower.ends_with(".gladly.qa") {
        return Err(domain_problem(
            raw,
            "is the whole host name",
            org_from_host(&lower),
        ));
    }
    check_labels(&lower).map_err(|what| {
        let first = lower.split('.').next().unwrap_or_default();
        let suggestion = check_labels(first)
            .ok()
            .filter(|f| *f != lower)
            .map(|f| (f, false));
        domain_problem(raw, &what, suggestion)
    })
}

/// A fix derived from the host-like text before a path or port.
fn suggest(before: &str) -> Option<(String, bool)> {
    org_from_host(before).or_else(|| {
        check_labels(&before.to_ascii_lowercase())
            .ok()
            .map(|o| (o, false))
    })
}

/// `org` or `org.cluster`: DNS labels of `[a-z0-9-]`, where a cluster label looks like `us-1`.
fn check_labels(lower: &str) -> Result<String, String> {
    let labels: Vec<&str> = lower.split('.').collect();
    if labels.len() > 2 {
        return Err("has too many dots to be an organization name".to_string());
    }
    for label in &labels {
        let ok_chars = label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if label.is_empty()
            || label.len() > 63
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "has an invalid part `{label}` (letters, digits and inner hyphens only)"
            ));
        }
        if *label == "gladly" {
            return Err("contains gladly, which belongs after the organization part".to_string());
        }
    }
    // A second label is a Gladly cluster (`us-1`, `us-uat`); a bare word such as `com` means
    // another site's host name was typed.
    let bare_word = |l: &&&str| !l.chars().any(|c| c == '-' || c.is_ascii_digit());
    if let Some(cluster) = labels.get(1).filter(bare_word) {
        return Err(format!(
            "looks like a host name outside Gladly (`{cluster}` is not a Gladly cluster label)"
        ));
    }
    Ok(lower.to_string())
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

    fn fix_of(raw: &str) -> String {
        check_domain(raw).unwrap_err().fix
    }

    #[test]
    fn accepts_org_and_cluster() {
        assert_eq!(check_domain("mycompany").unwrap(), "mycompany");
        assert_eq!(check_domain("MyCompany.US-1").unwrap(), "mycompany.us-1");
        assert_eq!(check_domain("acme-2").unwrap(), "acme-2");
    }

    #[test]
    fn rejects_urls_with_a_derived_fix() {
        assert!(fix_of("https://mycompany.gladly.com").contains("`mycompany`"));
        assert!(fix_of("https://mycompany.gladly.com/").contains("`mycompany`"));
        assert!(fix_of("https://mycompany.us-1.gladly.com").contains("`mycompany.us-1`"));
        let e = check_domain("https://mycompany.gladly.com").unwrap_err();
        assert_eq!(e.key, "domain");
        assert!(e.message.contains("organization part"));
        let qa = fix_of("https://mycompany.gladly.qa");
        assert!(qa.contains("`mycompany`") && qa.contains("sandbox to true"));
        assert!(!fix_of("https://evil.example.com").contains('`'));
    }

    #[test]
    fn rejects_full_hosts_paths_ports_userinfo_spaces() {
        assert!(fix_of("mycompany.gladly.com").contains("`mycompany`"));
        let qa = fix_of("mycompany.gladly.qa");
        assert!(qa.contains("`mycompany`") && qa.contains("sandbox"));
        assert!(fix_of("mycompany/api").contains("`mycompany`"));
        assert!(fix_of("mycompany:443").contains("`mycompany`"));
        assert!(check_domain("user@mycompany").is_err());
        assert!(fix_of(" mycompany ").contains("`mycompany`"));
        assert!(check_domain("my company").is_err());
    }

    #[test]
    fn rejects_non_gladly_hosts() {
        for bad in [
            "evil.com",
            "acme.evil.com",
            "evil.com.",
            "a..b",
            "-acme",
            "acme_1",
            "gladly",
            "acme.gladly",
            "ACME.GLADLY.COM.evil.com",
            "acme?x=1",
            "acme#x",
            "",
        ] {
            assert!(check_domain(bad).is_err(), "{bad} should be rejected");
        }
        assert!(fix_of("acme.com").contains("`acme`"));
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
                ("custom-attributes-patch".into(), "merge".into()),
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

    fn m(source: &str, target: &str) -> FieldMapping {
        FieldMapping {
            source: source.into(),
            target: target.into(),
        }
    }

    #[test]
    fn validate_checks_mode_and_mapping() {
        let mapping = vec![m("e", "email")];
        assert!(validate(&base(), SyncMode::Upsert, &mapping).is_ok());
        let p = validate(&base(), SyncMode::Mirror, &mapping).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.key == "mode" && p.message.contains("delete"))
        );
        let p = validate(&base(), SyncMode::AudienceAdd, &mapping).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.key == "mode" && p.message.contains("audience"))
        );
        // update needs `id`, not `email`
        let p = validate(&base(), SyncMode::Update, &mapping).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.key == "id" && p.message.contains("primary key"))
        );
        assert!(validate(&base(), SyncMode::Update, &[m("gid", "id")]).is_ok());
        // insert/upsert need `email`
        let p = validate(&base(), SyncMode::Insert, &[m("n", "name")]).unwrap_err();
        assert!(p.iter().any(|p| p.key == "email"));
        // config and mapping problems together
        let p = validate(&[], SyncMode::Insert, &[m("n", "name")]).unwrap_err();
        assert_eq!(p.len(), 3);
        // a typo and the missing field it causes are both reported
        let p = validate(
            &base(),
            SyncMode::Upsert,
            &[m("e", "Email"), m("a", "name"), m("b", "name")],
        )
        .unwrap_err();
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["Email", "name", "email"]);
    }
}
