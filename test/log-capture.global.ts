/**
 * vitest globalSetup: every log line of the test run (jsonLogger and
 * silentLogger, in vitest's workers and in the CLI processes tests start) is
 * captured under TRELLIS_LOG_CAPTURE_DIR; when the run ends, a line carrying
 * a test passphrase, a SoftHSM PIN, a PEM private key or an API token fails
 * it, naming the file and line. The directory stays for inspection then, and
 * is removed when the logs are clean.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scanLogs } from './helpers/log-scan.js';

export function setup(): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-logs-'));
  // Set before vitest starts its workers: they and their children inherit it.
  process.env.TRELLIS_LOG_CAPTURE_DIR = dir;
  return () => {
    delete process.env.TRELLIS_LOG_CAPTURE_DIR;
    const { findings, lines, files } = scanLogs(dir);
    if (findings.length === 0) {
      console.log(`log capture: ${lines} lines from ${files} processes, no test secret in them`);
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    }
    const shown = findings.slice(0, 20).map((f) => `  ${f.file}:${f.line}: ${f.secret}`);
    const more = findings.length > shown.length ? [`  … and ${findings.length - shown.length} more`] : [];
    // vitest prints an error thrown here but keeps its exit status: fail the run ourselves.
    process.exitCode = 1;
    throw new Error(`secrets in the captured logs of this test run (${findings.length} lines):\n${[...shown, ...more].join('\n')}`);
  };
}
