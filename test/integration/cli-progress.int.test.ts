/**
 * Progress of long CLI operations (src/cli/progress.ts) through the real CLI
 * (dist/): on a terminal (a pseudo-terminal from script(1)) `device import`,
 * `crl publish` and `backup create`/`restore` draw a progress line on stderr;
 * in a script (pipes) the same commands print no progress at all, and stdout
 * carries the result alone either way.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cliFor } from '../helpers/cli.js';
import { interopAvailable } from '../helpers/interop.js';
import { testPki, testPassphrase, testRootPassphrase, type TestPki } from '../helpers/test-pki.js';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const hasScript = interopAvailable(fs.existsSync('/usr/bin/script'), 'script(1) from util-linux (a pseudo-terminal for the progress line)', 'apt-get install bsdutils');
/** A progress line as drawn: carriage return, erase line, the label. */
const drawn = (label: string) => new RegExp(`\\r\\x1b\\[2K${label}: `);

let pki: TestPki;
let trellis: ReturnType<typeof cliFor>;
const env = () => ({ ...process.env, TRELLIS_PASSPHRASE: testPassphrase, TRELLIS_ROOT_PASSPHRASE: testRootPassphrase, TRELLIS_DATA: pki.dataDir });
const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Runs the CLI on a terminal; stdout goes to a file, so what the terminal shows is stderr alone. */
async function onTerminal(args: string[]): Promise<{ terminal: string; stdout: string }> {
  const stdoutFile = path.join(pki.dir, `tty-${Date.now()}.out`);
  const cmd = `${q(process.execPath)} ${q(bin)} ${args.map(q).join(' ')} > ${q(stdoutFile)}`;
  const terminal = await new Promise<string>((resolve, reject) =>
    execFile('script', ['-qec', cmd, '/dev/null'], { env: env(), encoding: 'utf8' }, (err, out) => (err ? reject(new Error(`${args.join(' ')}: ${err.message}\n${out}`)) : resolve(out))),
  );
  return { terminal, stdout: fs.readFileSync(stdoutFile, 'utf8') };
}

beforeAll(async () => {
  pki = await testPki();
  trellis = cliFor(pki.dataDir, testPassphrase, { TRELLIS_ROOT_PASSPHRASE: testRootPassphrase });
  fs.writeFileSync(path.join(pki.dir, 'devices.csv'), `id\n${Array.from({ length: 2500 }, (_, i) => `tty-${i}`).join('\n')}\n`);
}, 60_000);
afterAll(async () => {
  await pki?.close();
});

describe.skipIf(!hasScript)('on a terminal', () => {
  test('device import draws a bar that ends at the full count, then erases it', async () => {
    const { terminal, stdout } = await onTerminal(['device', 'import', '--csv', path.join(pki.dir, 'devices.csv')]);
    expect(terminal).toMatch(drawn('device import'));
    expect(terminal).toContain('[########################] 2500/2500 devices');
    expect(terminal.endsWith('\r\x1b[2K')).toBe(true);
    expect(stdout).toMatch(/^imported 2500 devices in /);
  });

  test('crl publish counts the CRLs it signs', async () => {
    const { terminal, stdout } = await onTerminal(['crl', 'publish', '--out', path.join(pki.dir, 'crl-out')]);
    const steps = [...terminal.matchAll(/crl publish: \[[#.]+\] (\d+)\/(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(steps.length).toBeGreaterThan(0);
    const [done, total] = steps.at(-1)!;
    expect(done).toBe(total);
    expect(total).toBeGreaterThan(0);
    expect(stdout).toMatch(/^wrote \d+ CRLs/);
  });

  test('backup create counts rows; restore shows rows of the total', async () => {
    const file = path.join(pki.dir, 'tty.backup');
    const created = await onTerminal(['backup', 'create', '--out', file]);
    expect(created.terminal).toMatch(/backup: \d+ rows \(\w+\)/);
    expect(created.stdout).toMatch(/^backup written to /);
    const restored = await onTerminal(['backup', 'restore', '--in', file, '--data', path.join(pki.dir, 'restored')]);
    const rows = [...restored.terminal.matchAll(/restore: \[[#.]+\] (\d+)\/(\d+) rows/g)];
    expect(rows.length).toBeGreaterThan(0);
    const [, done, total] = rows.at(-1)!;
    expect(done).toBe(total);
    expect(restored.stdout).toMatch(/^restored into /);
  });
});

describe('in a script', () => {
  test('the same commands print no progress line', async () => {
    fs.writeFileSync(path.join(pki.dir, 'quiet.csv'), 'id\nquiet-1\nquiet-2\n');
    const runs = [
      await trellis(['device', 'import', '--csv', path.join(pki.dir, 'quiet.csv')]),
      await trellis(['crl', 'publish', '--out', path.join(pki.dir, 'crl-quiet')]),
      await trellis(['backup', 'create', '--out', path.join(pki.dir, 'quiet.backup')]),
    ];
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr + r.stdout).not.toContain('\x1b[2K');
      expect(r.stderr).not.toMatch(/(device import|crl publish|backup): /);
    }
  });
});
