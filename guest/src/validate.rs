//! `validate-config`: the settings, the sync mode and the mapping checked together.
//!
//! Every problem is collected at once (settings, mode and mapping alike) so an operator fixes a
//! form in one pass. This is the one module that ties [`crate::settings`], [`crate::spec`] and
//! [`crate::mapping`] together; none of them depends on it.

use crate::mapping::Plan;
use crate::matching::MatchKey;
use crate::model::{
    ConfigProblem, DestError, ErrorCategory, ErrorCode, FieldMapping, Setting, SyncMode,
};
use crate::settings::{Config, KEY_MATCH_ON, parse};
use crate::spec::mode_support;

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
    // Only an upsert looks customers up (update goes by id, insert only creates).
    if let Some(c) = config.as_ref().filter(|_| mode == SyncMode::Upsert) {
        problems.extend(unmapped_match_keys(c, &plan));
    }
    match config {
        Some(c) if problems.is_empty() => Ok((c, plan)),
        _ => Err(problems),
    }
}

/// A `match-on` key no mapped column gives a value: it could never find anyone. (An unmapped
/// `email` is already refused for upsert by [`Plan::check_mode`].)
fn unmapped_match_keys(config: &Config, plan: &Plan) -> Vec<ConfigProblem> {
    config
        .match_on
        .iter()
        .filter(|key| **key != MatchKey::Email && !key.targets().iter().any(|t| plan.maps(*t)))
        .map(|key| {
            let targets: Vec<&str> = key.targets().iter().map(|t| t.name()).collect();
            ConfigProblem::new(
                KEY_MATCH_ON,
                format!("match-on lists {}, but no column is mapped to {}.", key.name(), targets.join(" or ")),
                format!(
                    "Map a column to {} (for example `customer_id = \"{}\"`), or remove {} from match-on.",
                    targets.first().copied().unwrap_or_default(),
                    targets.first().copied().unwrap_or_default(),
                    key.name()
                ),
            )
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<Setting> {
        [("domain", "acme"), ("username", "api@acme.com")]
            .iter()
            .map(|(k, v)| Setting {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect()
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

    #[test]
    fn a_match_key_without_a_mapped_column_is_refused_with_the_fix() {
        let mut settings = base();
        settings.push(Setting { key: "match-on".into(), value: "externalCustomerId,email".into() });
        let p = validate(&settings, SyncMode::Upsert, &[m("e", "email")]).unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "match-on");
        assert_eq!(p[0].message, "match-on lists externalCustomerId, but no column is mapped to externalCustomerId.");
        assert_eq!(
            p[0].fix,
            "Map a column to externalCustomerId (for example `customer_id = \"externalCustomerId\"`), or remove externalCustomerId from match-on."
        );
        assert!(validate(&settings, SyncMode::Upsert, &[m("e", "email"), m("c", "externalCustomerId")]).is_ok());
        settings[2].value = "phone".into();
        assert!(validate(&settings, SyncMode::Upsert, &[m("e", "email"), m("p", "mobilePhone")]).is_ok());
    }
}
