//! `validate-config`: the settings, the sync mode and the mapping checked together.
//!
//! Every problem is collected at once (settings, mode and mapping alike) so an operator fixes a
//! form in one pass. This is the one module that ties [`crate::settings`], [`crate::spec`] and
//! [`crate::mapping`] together; none of them depends on it.

use crate::mapping::Plan;
use crate::model::{
    ConfigProblem, DestError, ErrorCategory, ErrorCode, FieldMapping, Setting, SyncMode,
};
use crate::settings::{Config, parse};
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
}
