// The component's stdout and stderr. jco's shim writes them straight to the process's streams;
// while a component runs, the host takes those writes over: each line is prefixed with the
// tenant, stripped of the secret and of control characters, and goes to the host's stderr.
// The host's own lines use `hostWrite`, which bypasses the capture.

import { redact } from './redact.mjs';

const originalStderrWrite = process.stderr.write.bind(process.stderr);

/** Writes one line of the host's own output. */
export function hostWrite(line) {
  originalStderrWrite(`${line}\n`);
}

/** Control characters and bidirectional overrides, escaped so no line can be forged. */
export function escapeControls(text) {
  return text.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
}

/** Captures the component's stdio for `tenant` until the returned function is called. */
export function captureComponentStdio(tenant) {
  const originals = { stdout: process.stdout.write, stderr: process.stderr.write };
  const capture = (name) => (chunk, encoding, callback) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    for (const line of text.split('\n').filter((l) => l.length > 0)) {
      hostWrite(`[${tenant}] ${name}: ${escapeControls(redact(line)).slice(0, 4096)}`);
    }
    if (typeof encoding === 'function') encoding();
    else if (typeof callback === 'function') callback();
    return true;
  };
  process.stdout.write = capture('stdout');
  process.stderr.write = capture('stderr');
  return () => {
    process.stdout.write = originals.stdout;
    process.stderr.write = originals.stderr;
  };
}
