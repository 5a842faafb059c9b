/**
 * The patterns of the log secret scan (test/helpers/log-scan.ts) catch the
 * secrets the test helpers and Trellis hand out today, as a log line would
 * carry them (inside a JSON string), and the scan names file and line.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, expect, test } from 'vitest';
import { createToken } from '../src/tokens/tokens.js';
import type { TokenRepository } from '../src/tokens/ports.js';
import { scanLogs, secretsIn } from './helpers/log-scan.js';
import { tempDir } from './helpers/openssl.js';
import { haveSoftHsm, removeSoftHsm, softHsmToken } from './helpers/softhsm.js';
import { testPassphrase, testRootPassphrase } from './helpers/test-pki.js';

const logLine = (value: string) => JSON.stringify({ level: 'error', msg: 'failed', error: value });
const dir = tempDir('trellis-log-scan-');
afterAll(() => dir.cleanup());

test.each([
  ['the test passphrase', testPassphrase, 'test passphrase'],
  ['the test root passphrase', `open failed with ${testRootPassphrase}`, 'test root passphrase'],
  ['a PKCS#8 PEM key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'PEM private key'],
  ['a SEC1 PEM key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString(), 'PEM private key'],
])('caught: %s', (_name, value, secret) => {
  expect(secretsIn(logLine(value))).toEqual([secret]);
});

test('caught: an API token as createToken makes it', async () => {
  // Only insert is called; the format of the secret is what is checked.
  const repo = { insert: async () => {} } as unknown as TokenRepository;
  const { secret } = await createToken(repo, 'admin', 'scan');
  expect(secretsIn(logLine(`Bearer ${secret}`))).toEqual(['API bearer token']);
});

test.runIf(haveSoftHsm())('caught: the PINs of a SoftHSM test token', () => {
  try {
    const token = softHsmToken('log-scan');
    expect(secretsIn(logLine(token.pin))).toEqual(['SoftHSM PIN']);
    expect(secretsIn(logLine(token.soPin))).toEqual(['SoftHSM PIN']);
  } finally {
    removeSoftHsm();
  }
});

test('not caught: what lines carry today (ids, redacted fields, public keys, token ids)', () => {
  const publicPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  for (const value of ['[redacted]', publicPem, 'tok_0123456789abcdef', 'trellis_', 'issuing-1', 'missing or malformed bearer token']) {
    expect(secretsIn(logLine(value))).toEqual([]);
  }
});

test('scanLogs names every file and line that carries a secret', () => {
  fs.writeFileSync(dir.file('1.ndjson'), [logLine('fine'), logLine(testPassphrase), logLine('fine')].join('\n') + '\n');
  fs.writeFileSync(dir.file('2.ndjson'), logLine('-----BEGIN PRIVATE KEY-----') + '\n');
  fs.writeFileSync(dir.file('3.ndjson'), logLine('clean') + '\n');
  expect(scanLogs(dir.dir)).toEqual({
    findings: [
      { file: dir.file('1.ndjson'), line: 2, secret: 'test passphrase' },
      { file: dir.file('2.ndjson'), line: 1, secret: 'PEM private key' },
    ],
    lines: 5,
    files: 3,
  });
});
