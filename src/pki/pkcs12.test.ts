import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, expect, test } from 'vitest';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { buildPkcs12 } from './pkcs12.js';
import { pemBlocks } from './pem.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const run = (args: string[]) =>
  new Promise<{ code: number; out: string }>((resolve) => execFile('openssl', args, { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr })));

test('OpenSSL 3 reads it without -legacy: AES-256-CBC/PBKDF2-SHA256 bags, SHA-256 MAC, the key matching the certificate', async () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  fs.writeFileSync(tmp.file('k.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await openssl('req', '-x509', '-key', tmp.file('k.pem'), '-subj', '/CN=p12 test', '-days', '1', '-out', tmp.file('c.pem'));
  const certDer = pemBlocks(fs.readFileSync(tmp.file('c.pem'), 'utf8'))[0]!.der;
  const p12 = await buildPkcs12({ keyPkcs8: privateKey.export({ type: 'pkcs8', format: 'der' }), certDer, chainDer: [certDer], passphrase: 'pässphrase 1', friendlyName: 'dev', iterations: 2048 });
  fs.writeFileSync(tmp.file('a.p12'), p12);
  fs.writeFileSync(tmp.file('pass'), 'pässphrase 1');
  const info = await run(['pkcs12', '-info', '-noout', '-in', tmp.file('a.p12'), '-passin', `file:${tmp.file('pass')}`]);
  expect(info.code, info.out).toBe(0);
  expect(info.out).toMatch(/MAC: sha256/);
  expect(info.out).toMatch(/Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/);
  expect(info.out).toMatch(/PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/);
  const out = await run(['pkcs12', '-in', tmp.file('a.p12'), '-passin', `file:${tmp.file('pass')}`, '-nodes']);
  expect(out.code, out.out).toBe(0);
  const keyOut = pemBlocks(out.out).find((b) => b.label === 'PRIVATE KEY')!.der;
  expect(keyOut).toEqual(privateKey.export({ type: 'pkcs8', format: 'der' }));
  const wrong = await run(['pkcs12', '-info', '-noout', '-in', tmp.file('a.p12'), '-passin', 'pass:wrong']);
  expect(wrong.code).toBe(1);
  expect(wrong.out).toMatch(/Mac verify error/);
});
