// `node src/main.mjs JOB.json RESULTS.json`: runs the job through the component and writes
// what happened to every row. The job file (written by the operator or a test):
//
//   component    path of the built component (.wasm)
//   tenant, syncId, mode ("upsert", "insert", "update")
//   settings     [[key, value]…]   the destination's settings (no secret among them)
//   mapping      [[column, target]…]
//   rows         [{key, columns: {name: text or null}}…]
//   grants       hosts the operator allows
//   credential   {username?, tokenFile}: the token is read from the file, never from the job
//   redirect     "http://127.0.0.1:PORT" of an emulator (needs DESTINATION_HOST_ALLOW_EMULATOR=1)
//   limits       {ratePerSecond, maxRetries, backoffBaseMs, backoffMaxMs, requestTimeoutMs, batchSize}
//   checkConnection  false to skip check-connection (default: run it first, stop if it fails)
//
// Results go to a file because the component's own stdout is the process's.

import { readFile, writeFile } from 'node:fs/promises';
import { runJob } from './host.mjs';

const [jobPath, resultsPath] = process.argv.slice(2);
if (!jobPath || !resultsPath) {
  process.stderr.write('usage: node src/main.mjs JOB.json RESULTS.json\n');
  process.exit(2);
}
try {
  const job = JSON.parse(await readFile(jobPath, 'utf8'));
  const results = await runJob(job);
  await writeFile(resultsPath, JSON.stringify(results, null, 2));
  process.exit(0);
} catch (e) {
  process.stderr.write(`node host: ${e?.stack ?? e}\n`);
  process.exit(1);
}
