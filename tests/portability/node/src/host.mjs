// Runs one sync of a job through the component: spec, validate-config, check-connection,
// map-rows, then sync-batch in batches, retrying retryable records with exponential backoff as
// the Rust host does. Untrusted output is checked: exactly one result per item, by key.

import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { _setArgs, _setCwd, _setEnv } from '@bytecodealliance/preview2-shim/cli';
import { transpiled } from './transpile.mjs';
import { setEgressPolicy, clearEgressPolicy } from './egress.mjs';
import { setTenant } from './imports.mjs';
import { OrgLimiter, sleepSync } from './limiter.mjs';
import { clearSecret, redact, setSecret } from './redact.mjs';
import { captureComponentStdio, hostWrite } from './stdio.mjs';

/** What the component is given of the process: nothing (no variables, arguments or folder). */
function isolateProcess() {
  _setEnv({});
  _setArgs([]);
  _setCwd('/');
}

/** A component error (an `err` result), as opposed to a trap, which is a JavaScript Error. */
function isComponentError(e) {
  return e !== null && typeof e === 'object' && !(e instanceof Error);
}

/** Backoff before retry `n` (1-based): base × 2^(n−1) plus up to as much in jitter, capped. */
function backoffMs(n, limits, retryAfterMs) {
  const base = limits.backoffBaseMs * 2 ** (n - 1);
  const delay = Math.min(base + Math.random() * base, limits.backoffMaxMs);
  const asked = retryAfterMs === undefined ? 0 : Math.min(Number(retryAfterMs), limits.backoffMaxMs);
  return Math.max(delay, asked);
}

function textRow(row) {
  return {
    key: row.key,
    columns: Object.entries(row.columns).map(([name, value]) => ({
      name,
      value: value === null ? { tag: 'null' } : { tag: 'text', val: String(value) },
    })),
  };
}

function failedFrom(key, error, attempts) {
  return { key, outcome: 'failed', remoteId: null, code: error.code, category: error.category, httpStatus: error.httpStatus ?? null, message: redact(error.message), attempts };
}

/**
 * @param {object} job see main.mjs
 * @returns {Promise<{spec: object, connection: object, records: object[], denials: string[], requests: number}>}
 */
export async function runJob(job) {
  isolateProcess();
  setTenant(job.tenant);
  const { destination: d } = await import(pathToFileURL(await transpiled(job.component)).href);
  const spec = d.spec();
  const settings = job.settings.map(([key, value]) => ({ key, value }));
  const mapping = job.mapping.map(([source, target]) => ({ source, target }));

  let resolved;
  try {
    resolved = d.validateConfig(settings, job.mode, mapping);
  } catch (e) {
    if (isComponentError(e)) throw new Error(`invalid configuration: ${e.map((p) => `${p.key}: ${p.message} ${p.fix}`).join('; ')}`);
    throw e;
  }

  // Two keys for egress: what the component declares, intersected with what the operator
  // granted. The credential is bound to the API host of the validated configuration, on https
  // and the default port, and the operator must have granted it.
  const base = new URL(resolved.baseUrl);
  const host = base.hostname;
  if (base.protocol !== 'https:' || base.port !== '' || base.username !== '' || base.password !== '') {
    throw new Error(`the component resolved ${JSON.stringify(resolved.baseUrl)}: the credential goes only to an https host on the default port`);
  }
  if (!job.grants.includes(host)) {
    throw new Error(`${host} is not granted: add it to the job's grants`);
  }
  const hosts = resolved.egressHosts.filter((h) => job.grants.includes(h));
  const token = (await readFile(job.credential.tokenFile, 'utf8')).trim();
  const username = resolved.username ?? job.credential.username;
  const authorization = `Basic ${Buffer.from(`${username}:${token}`).toString('base64')}`;
  setSecret(username, token);
  let redirect = null;
  if (job.redirect) {
    if (process.env.DESTINATION_HOST_ALLOW_EMULATOR !== '1') {
      throw new Error('a redirect to an emulator needs DESTINATION_HOST_ALLOW_EMULATOR=1 (development and tests only)');
    }
    const url = new URL(job.redirect);
    if (url.hostname !== '127.0.0.1') throw new Error('an emulator redirect must point to 127.0.0.1');
    redirect = url.host;
    hostWrite(`warning: API traffic for ${host} goes to the emulator at ${redirect}`);
  }
  const limits = job.limits;
  const policy = setEgressPolicy({
    hosts,
    credentialHost: host,
    authorization,
    redirect,
    timeoutMs: limits.requestTimeoutMs,
    limiter: new OrgLimiter(limits.ratePerSecond),
  });

  const releaseStdio = captureComponentStdio(job.tenant);
  try {
    let connection = null;
    if (job.checkConnection !== false) {
      try {
        connection = d.checkConnection(resolved.settings);
      } catch (e) {
        if (isComponentError(e)) throw new Error(`connection check failed: ${e.code}: ${e.message}`);
        throw e;
      }
    }

    const rows = job.rows.map(textRow);
    const mapped = d.mapRows(resolved.settings, mapping, rows);
    if (mapped.length !== rows.length) throw new Error(`map-rows returned ${mapped.length} results for ${rows.length} rows`);
    const records = new Map();
    const items = [];
    mapped.forEach((m, i) => {
      if (m.tag === 'err') {
        records.set(rows[i].key, failedFrom(rows[i].key, m.val.error, 0));
      } else {
        items.push({ row: rows[i], knownId: undefined, previousPayload: undefined });
      }
    });

    for (let start = 0; start < items.length; start += limits.batchSize) {
      let pending = items.slice(start, start + limits.batchSize);
      for (let attempt = 0; pending.length > 0; attempt += 1) {
        const retry = [];
        let results;
        try {
          results = d.syncBatch({ syncId: job.syncId, attempt }, resolved.settings, job.mode, mapping, pending);
        } catch (e) {
          if (!isComponentError(e)) throw e;
          results = pending.map((item) => ({ key: item.row.key, outcome: 'failed', error: e }));
        }
        const byKey = new Map(results.map((r) => [r.key, r]));
        if (results.length !== pending.length || pending.some((item) => !byKey.has(item.row.key))) {
          throw new Error(`sync-batch broke the contract: ${results.length} results for ${pending.length} items`);
        }
        let retryAfterMs;
        for (const item of pending) {
          const r = byKey.get(item.row.key);
          if (r.outcome === 'failed' && r.error?.retryable && attempt < limits.maxRetries) {
            retry.push(item);
            if (r.error.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, Number(r.error.retryAfterMs));
          } else if (r.outcome === 'failed') {
            records.set(r.key, failedFrom(r.key, r.error, attempt + 1));
          } else if (typeof r.remoteId === 'string' && redact(r.remoteId) !== r.remoteId) {
            // An id carrying the credential would spread it into state and reports.
            const error = { code: 'plugin-failure', category: 'skip-record', message: 'the plugin returned the credential as the remote id' };
            records.set(r.key, failedFrom(r.key, error, attempt + 1));
          } else {
            records.set(r.key, { key: r.key, outcome: r.outcome, remoteId: r.remoteId ?? null, code: null, category: null, httpStatus: null, message: null, attempts: attempt + 1 });
          }
        }
        if (retry.length > 0) sleepSync(backoffMs(attempt + 1, limits, retryAfterMs));
        pending = retry;
      }
    }
    return {
      spec: { name: spec.name, version: spec.version },
      connection: connection && { account: connection.account ?? null },
      records: job.rows.map((r) => records.get(r.key)),
      denials: policy.denials,
      requests: policy.sent,
    };
  } finally {
    releaseStdio();
    clearEgressPolicy();
    clearSecret();
  }
}
