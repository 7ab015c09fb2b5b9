//! Stage 2a, map: each chunk the reader delivers is mapped in the sandbox by a task of its own,
//! so the next chunk is mapped while planning diffs the last one against state. The two halves
//! cost about the same per row (BENCHMARKS.md, Planning): one after the other, a no-change sync
//! used one core of two.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use super::read::Reader;
use crate::contract::model::{ErrorCategory, ErrorCode, FieldMapping, MappedRecord, RecordError, Row, RowError, Setting};
use crate::error::HostError;
use crate::sandbox::Plugin;
use crate::source::SourceItem;
use crate::sync::Tenant;

/// One chunk as the mapper hands it on.
pub(super) enum MappedChunk {
    /// The chunk's rows (those the source accepted) with the plugin's answer for each, in order.
    Mapped {
        /// Rows read, the source's invalid ones included.
        read: usize,
        /// Rows the source rejected, in source order.
        invalid: Vec<RowError>,
        rows: Vec<Row>,
        mapped: Vec<Result<MappedRecord, RowError>>,
    },
    /// The source failed part way; nothing follows.
    SourceFailed(String),
    /// Mapping failed as a whole (the host's own error); nothing follows. The chunk's rows
    /// still count as read, and those the source rejected as invalid.
    Fatal { read: usize, invalid: Vec<RowError>, error: HostError },
}

/// What mapping needs of the tenant, owned by the mapper's task.
struct MapContext {
    plugin: Arc<Plugin>,
    name: String,
    settings: Vec<Setting>,
    mapping: Vec<FieldMapping>,
}

/// The mapping stage of one run. Dropping it stops the task (and so the reader, whose chunks
/// it holds).
pub(super) struct Mapper {
    pub chunks: mpsc::Receiver<MappedChunk>,
    _task: AbortOnDropHandle<()>,
}

impl Mapper {
    /// Map what `reader` delivers, at most one mapped chunk waiting to be planned.
    pub fn spawn(tenant: &Tenant, reader: &mut Reader) -> Mapper {
        let mut raw = reader.take_chunks();
        let ctx = MapContext {
            plugin: tenant.plugin.clone(),
            name: tenant.name.clone(),
            settings: tenant.settings.clone(),
            mapping: tenant.mapping.clone(),
        };
        let (tx, chunks) = mpsc::channel(1);
        let task = tokio::spawn(async move {
            while let Some(chunk) = raw.recv().await {
                let msg = match chunk {
                    Ok(items) => map_chunk(&ctx, items).await,
                    Err(e) => MappedChunk::SourceFailed(e),
                };
                let last = !matches!(msg, MappedChunk::Mapped { .. });
                if tx.send(msg).await.is_err() || last {
                    return;
                }
            }
        });
        Mapper { chunks, _task: AbortOnDropHandle::new(task) }
    }
}

/// Split a chunk into accepted and invalid rows and map the accepted ones.
async fn map_chunk(ctx: &MapContext, items: Vec<SourceItem>) -> MappedChunk {
    let read = items.len();
    let mut rows: Vec<Row> = Vec::with_capacity(read);
    let mut invalid = Vec::new();
    for item in items {
        match item {
            SourceItem::Row(r) => rows.push(r),
            SourceItem::Invalid(inv) => invalid.push(inv.into_row_error()),
        }
    }
    match map_isolating(ctx, &rows).await {
        Ok(mapped) => MappedChunk::Mapped { read, invalid, rows, mapped },
        Err(error) => MappedChunk::Fatal { read, invalid, error },
    }
}

/// Map `rows`; when `map-rows` traps, breaks the contract or runs out of time on the whole
/// chunk, map each half again until the row that causes it is alone. That row becomes a
/// plugin-failure row error (not retried until it changes); every other row is mapped. Other
/// errors (the host's own) still end the run.
fn map_isolating<'a>(
    ctx: &'a MapContext,
    rows: &'a [Row],
) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<Result<MappedRecord, RowError>>, HostError>> + Send + 'a>> {
    Box::pin(async move {
        match ctx.plugin.map_rows(&ctx.name, &ctx.settings, &ctx.mapping, rows).await {
            Err(e @ (HostError::Plugin { .. } | HostError::Deadline { .. })) if rows.len() == 1 => {
                let key = rows[0].key.clone();
                let error = RecordError::host(
                    ErrorCode::PluginFailure,
                    ErrorCategory::SkipRecord,
                    format!("row {key}: the plugin cannot map this row even alone ({e}); it is not sent until the row or the plugin changes"),
                );
                Ok(vec![Err(RowError { key, error })])
            }
            Err(HostError::Plugin { .. } | HostError::Deadline { .. }) if rows.len() > 1 => {
                let (left, right) = rows.split_at(rows.len() / 2);
                let mut out = map_isolating(ctx, left).await?;
                out.extend(map_isolating(ctx, right).await?);
                Ok(out)
            }
            other => other,
        }
    })
}
