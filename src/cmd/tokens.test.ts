import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { PkiError } from '../errors/pki-error.js';
import { InstanceTokens, pinSource, refusedPin } from './tokens.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-tokens-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const saved = { pin: process.env.TRELLIS_PKCS11_PIN, root: process.env.TRELLIS_PKCS11_ROOT_PIN };
afterEach(() => {
  for (const [k, v] of [['TRELLIS_PKCS11_PIN', saved.pin], ['TRELLIS_PKCS11_ROOT_PIN', saved.root]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

async function rejection(p: Promise<unknown>): Promise<PkiError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(PkiError);
  return err as PkiError;
}

describe('token PIN sources', () => {
  test('the environment variable of the token comes first, then the file (first line), never the other token\'s', async () => {
    const file = path.join(dir, 'pin');
    fs.writeFileSync(file, '2468\n', { mode: 0o600 });
    delete process.env.TRELLIS_PKCS11_PIN;
    process.env.TRELLIS_PKCS11_ROOT_PIN = 'root-pin';
    expect((await pinSource('online', file)()).toString()).toBe('2468');
    process.env.TRELLIS_PKCS11_PIN = '1357';
    expect((await pinSource('online', file)()).toString()).toBe('1357');
    expect((await pinSource('root')()).toString()).toBe('root-pin');
  });

  test('rejects: a PIN file readable by others', async () => {
    delete process.env.TRELLIS_PKCS11_PIN;
    const file = path.join(dir, 'shared-pin');
    fs.writeFileSync(file, '2468\n', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    expect((await rejection(pinSource('online', file)())).type).toBe('invalidConfig');
  });

  test('rejects: no PIN anywhere (no terminal in tests), naming where one may come from', async () => {
    delete process.env.TRELLIS_PKCS11_ROOT_PIN;
    const err = await rejection(pinSource('root')());
    expect(err.type).toBe('badPassphrase');
    expect(err.message).toContain('TRELLIS_PKCS11_ROOT_PIN');
    expect(err.message).toContain('--pkcs11-root-pin-file');
  });

  test('refusedPin refuses with forbidden', async () => {
    expect((await rejection(refusedPin('serve never logs in to the root token')())).type).toBe('forbidden');
  });
});

describe('InstanceTokens', () => {
  test('software instance: no token, and opening one is invalidConfig', async () => {
    const tokens = new InstanceTokens({ type: 'software' });
    expect(tokens.issuingToken).toBeUndefined();
    expect(tokens.rootToken).toBeUndefined();
    expect((await rejection(tokens.open('trellis-ca'))).type).toBe('invalidConfig');
  });

  test('only the labels of trellis.json open; the PIN is not asked for another', async () => {
    let asked = 0;
    const tokens = new InstanceTokens({ type: 'pkcs11', module: '/nonexistent/module.so', token: 'ca', rootToken: 'root' });
    tokens.setPins({ online: async () => (asked++, Buffer.from('x')), root: async () => (asked++, Buffer.from('y')) });
    expect([tokens.issuingToken, tokens.rootToken]).toEqual(['ca', 'root']);
    const err = await rejection(tokens.open('other'));
    expect(err.type).toBe('invalidConfig');
    expect(err.message).toContain('"other" is not configured');
    expect(asked).toBe(0);
    await tokens.close();
  });
});
