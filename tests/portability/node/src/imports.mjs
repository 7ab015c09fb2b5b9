// The `reverse-etl:destination/host` import: the component's log, prefixed with the tenant,
// stripped of control characters so a plugin cannot forge a line of the host's own output, and
// of the tenant's secret.

import { redact } from './redact.mjs';
import { escapeControls, hostWrite } from './stdio.mjs';

let tenant = '-';

export function setTenant(name) {
  tenant = name;
}

export function log(level, message) {
  const line = `[${tenant}] ${level}: ${escapeControls(redact(String(message))).replace(/\n/g, '\\n').slice(0, 4096)}`;
  hostWrite(line);
}
