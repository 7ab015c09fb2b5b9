// Turns the component into JavaScript with jco, once per component (cached by content hash in
// `.transpiled/`), with two imports mapped to this host: the component's log and its egress.

import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile, rename, rm, access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { transpileBytes } from '@bytecodealliance/jco-transpile';

const here = dirname(fileURLToPath(import.meta.url));
const cacheRoot = join(here, '..', '.transpiled');

/** Imports the host provides itself; every other WASI import goes to jco's preview2 shim. */
export const HOST_MAP = {
  'reverse-etl:destination/host': pathToFileURL(join(here, 'imports.mjs')).href,
  'wasi:http/outgoing-handler': `${pathToFileURL(join(here, 'egress.mjs')).href}#outgoingHandler`,
};

/** The transpiled module's entry file for the component at `wasmPath`. */
export async function transpiled(wasmPath) {
  const bytes = await readFile(wasmPath);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const dir = join(cacheRoot, hash);
  const entry = join(dir, 'component.js');
  try {
    await access(entry);
    return entry;
  } catch {
    // not transpiled yet
  }
  const { files } = await transpileBytes(bytes, { name: 'component', map: HOST_MAP, emitTypescriptDeclarations: false });
  // Written to a fresh folder, then renamed: a concurrent run never sees half a module.
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  for (const [name, content] of Object.entries(files)) {
    const path = join(tmp, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  }
  await rename(tmp, dir).catch(async (e) => {
    await rm(tmp, { recursive: true, force: true });
    if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
  });
  return entry;
}
