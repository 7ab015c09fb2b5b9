//! The contract's functions as plain async methods on [`Plugin`]: each call gets a fresh
//! instance (or, for `sync-batch`, possibly one kept from the same tenant's previous batch), a
//! deadline, and its result checked against the contract before anyone uses it.

use std::collections::HashSet;
use std::sync::Arc;

use crate::contract::bindings::{self, wit};
use crate::egress::EgressPolicy;
use crate::error::HostError;
use crate::contract::model::{
    BatchContext, FieldMapping, MappedRecord, RecordResult, Row, RowError, Setting, SyncItem, SyncMode,
};
use crate::sandbox::output::{self, MAX_LABEL_BYTES, MAX_PAYLOAD_BYTES, clean, clean_error, clean_result};
use crate::sandbox::{Instance, Plugin, guarded};
use crate::egress::credentials::Redactor;
use crate::contract::spec::{ConfigProblem, ConnectionInfo, ResolvedConfig, Spec};

impl Plugin {
    /// The destination's capabilities.
    pub async fn spec(&self) -> Result<Spec, HostError> {
        let policy = self.no_egress("spec");
        let budget = self.limits().pure_call_deadline();
        let mut inst = self.instantiate(policy, budget).await?;
        let r = guarded("spec", budget, inst.exports.reverse_etl_destination_destination().call_spec(&mut inst.store)).await;
        inst.flush_stdio();
        Ok(r?.into())
    }

    /// Offline validation of a configuration, mode and mapping.
    pub async fn validate_config(
        &self,
        tenant: &str,
        config: &[Setting],
        mode: SyncMode,
        mapping: &[FieldMapping],
    ) -> Result<Result<ResolvedConfig, Vec<ConfigProblem>>, HostError> {
        let budget = self.limits().pure_call_deadline();
        let mut inst = self.instantiate(self.no_egress(tenant), budget).await?;
        let (c, m) = (bindings::settings(config), bindings::mapping(mapping));
        let call = inst.exports.reverse_etl_destination_destination().call_validate_config(&mut inst.store, &c, mode.into(), &m);
        let r = guarded(tenant, budget, call).await;
        inst.flush_stdio();
        let none = Redactor::none();
        Ok(r?.map(Into::into).map_err(|ps| {
            ps.into_iter()
                .map(|p| {
                    let mut p: ConfigProblem = p.into();
                    p.key = clean(&none, &p.key, MAX_LABEL_BYTES);
                    p.message = clean(&none, &p.message, output::MAX_MESSAGE_BYTES);
                    p.fix = clean(&none, &p.fix, output::MAX_MESSAGE_BYTES);
                    p
                })
                .collect()
        }))
    }

    /// One cheap authenticated call through the tenant's egress policy.
    pub async fn check_connection(
        &self,
        policy: Arc<EgressPolicy>,
        config: &[Setting],
    ) -> Result<ConnectionInfo, HostError> {
        let tenant = policy.tenant.clone();
        let redactor = policy.redactor.clone();
        let budget = self.limits().request_timeout() * 2;
        let mut inst = self.instantiate(policy, budget).await?;
        let c = bindings::settings(config);
        let call = inst.exports.reverse_etl_destination_destination().call_check_connection(&mut inst.store, &c);
        let r = guarded(&tenant, budget, call).await;
        inst.flush_stdio();
        match r? {
            Ok(info) => {
                let mut info: ConnectionInfo = info.into();
                info.account = info.account.map(|a| clean(&redactor, &a, MAX_LABEL_BYTES));
                Ok(info)
            }
            Err(e) => Err(HostError::Batch(cleaned(&redactor, e.into()))),
        }
    }

    /// Map rows; exactly one result per row, in order, or the call fails.
    pub async fn map_rows(
        &self,
        tenant: &str,
        config: &[Setting],
        mapping: &[FieldMapping],
        rows: &[Row],
    ) -> Result<Vec<Result<MappedRecord, RowError>>, HostError> {
        let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
        let budget = self.limits().pure_call_deadline();
        let mut inst = self.instantiate(self.no_egress(tenant), budget).await?;
        let (c, m) = (bindings::settings(config), bindings::mapping(mapping));
        let rows: Vec<wit::Row> = rows.iter().map(Into::into).collect();
        let call = inst.exports.reverse_etl_destination_destination().call_map_rows(&mut inst.store, &c, &m, &rows);
        let r = guarded(tenant, budget, call).await;
        inst.flush_stdio();
        let none = Redactor::none();
        let out: Vec<Result<MappedRecord, RowError>> = r?
            .into_iter()
            .map(|x| match x {
                Ok(m) => bounded_mapping(m.into()),
                Err(e) => {
                    let mut e: RowError = e.into();
                    clean_error(&none, &mut e.error);
                    Err(e)
                }
            })
            .collect();
        let got: Vec<&str> = out.iter().map(|x| x.as_ref().map_or_else(|e| e.key.as_str(), |m| m.key.as_str())).collect();
        check_one_per_row(tenant, "map-rows", &keys, &got)?;
        Ok(out)
    }

    /// Write records through the tenant's egress policy, in the instance `kept` holds (a new one
    /// when it holds none). Exactly one result per item, in order, or the call fails as a whole
    /// (the host then fails every item of the batch). The instance is handed back in `kept` only
    /// when the call ended well and the plugin printed nothing: one that trapped, ran out of time
    /// or broke the contract is dropped, so the next batch starts from a fresh one.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync_batch(
        &self,
        kept: &mut Option<Instance>,
        policy: Arc<EgressPolicy>,
        context: BatchContext,
        config: &[Setting],
        mode: SyncMode,
        mapping: &[FieldMapping],
        items: Vec<SyncItem>,
    ) -> Result<Vec<RecordResult>, HostError> {
        let tenant = policy.tenant.clone();
        let redactor = policy.redactor.clone();
        let keys: Vec<String> = items.iter().map(|i| i.row.key.clone()).collect();
        let budget = self.limits().call_deadline();
        let mut inst = match kept.take() {
            Some(mut inst) if inst.tenant() == tenant => {
                inst.begin_call(budget, self.limits().log_bytes_per_call);
                inst
            }
            _ => self.instantiate(policy, budget).await?,
        };
        let (c, m) = (bindings::settings(config), bindings::mapping(mapping));
        let items: Vec<wit::SyncItem> = items.into_iter().map(Into::into).collect();
        let context: wit::BatchContext = context.into();
        let call = inst.exports.reverse_etl_destination_destination().call_sync_batch(
            &mut inst.store,
            &context,
            &c,
            mode.into(),
            &m,
            &items,
        );
        let r = guarded(&tenant, budget, call).await;
        inst.flush_stdio();
        let mut results: Vec<RecordResult> =
            r?.map_err(|e| HostError::Batch(cleaned(&redactor, e.into())))?.into_iter().map(Into::into).collect();
        for result in &mut results {
            clean_result(&redactor, result);
        }
        let got: Vec<&str> = results.iter().map(|r| r.key.as_str()).collect();
        check_one_per_row(&tenant, "sync-batch", &keys, &got)?;
        if inst.printed_nothing() {
            *kept = Some(inst);
        }
        Ok(results)
    }
}

/// A plugin's error with its text made safe to store and print.
fn cleaned(redactor: &Redactor, mut e: crate::contract::model::RecordError) -> crate::contract::model::RecordError {
    clean_error(redactor, &mut e);
    e
}

/// A mapped record whose payload is within [`MAX_PAYLOAD_BYTES`]; an oversized one is that
/// row's error, not the run's memory.
fn bounded_mapping(m: MappedRecord) -> Result<MappedRecord, RowError> {
    if m.payload.len() <= MAX_PAYLOAD_BYTES {
        return Ok(m);
    }
    let error = crate::contract::model::RecordError::host(
        crate::contract::model::ErrorCode::PluginFailure,
        crate::contract::model::ErrorCategory::SkipRecord,
        format!(
            "row {}: the mapped record is {} bytes, over the host's limit of {MAX_PAYLOAD_BYTES}; map fewer or shorter columns",
            output::truncate(&m.key, MAX_LABEL_BYTES),
            m.payload.len()
        ),
    );
    Err(RowError { key: m.key, error })
}

/// The contract: one result per input, same keys, same order.
fn check_one_per_row(tenant: &str, call: &str, expected: &[String], got: &[&str]) -> Result<(), HostError> {
    if expected.len() != got.len() {
        return Err(HostError::Plugin {
            tenant: tenant.to_string(),
            reason: format!("{call} returned {} results for {} rows; the contract requires exactly one per row", got.len(), expected.len()),
        });
    }
    if let Some((e, g)) = expected.iter().zip(got).find(|(e, g)| e.as_str() != **g) {
        let known: HashSet<&str> = expected.iter().map(String::as_str).collect();
        let what = if known.contains(g) { "out of order" } else { "for a key that was not sent" };
        return Err(HostError::Plugin {
            tenant: tenant.to_string(),
            reason: format!(
                "{call} returned a result {what} (expected key {e:?}, got {g:?}); the contract requires exactly one result per row, in order"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_result_per_row() {
        let exp = vec!["a".to_string(), "b".to_string()];
        assert!(check_one_per_row("t", "x", &exp, &["a", "b"]).is_ok());
        assert!(check_one_per_row("t", "x", &exp, &["a"]).unwrap_err().to_string().contains("1 results for 2 rows"));
        assert!(check_one_per_row("t", "x", &exp, &["b", "a"]).unwrap_err().to_string().contains("out of order"));
        assert!(check_one_per_row("t", "x", &exp, &["a", "z"]).unwrap_err().to_string().contains("not sent"));
    }
}
