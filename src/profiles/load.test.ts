import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { defaultProfilesDir, fieldPath, getProfile, loadProfile, loadProfiles } from './load.js';
import type { Profile } from './types.js';

const day = 86_400;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-profiles-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const serverYaml = fs.readFileSync(path.join(defaultProfilesDir(), 'server.yaml'), 'utf8');

/** A fresh directory under the temp dir holding the given files. */
function dirWith(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'dir-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

async function loadError(dir: string): Promise<Error> {
  const err = await loadProfiles(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isPkiError(err, 'badProfile')).toBe(true);
  return err as Error;
}

describe('the eight shipped profiles', async () => {
  const profiles = await loadProfiles(defaultProfilesDir());
  const p = (name: string): Profile => getProfile(profiles, name);

  test('all load from ca-profiles/', () => {
    expect([...profiles.keys()].sort()).toEqual(['audit-signer', 'client', 'device', 'issuing-ca', 'ocsp-responder', 'operator', 'root-ca', 'server']);
    expect(fs.existsSync(path.join(defaultProfilesDir(), 'root-ca.yaml'))).toBe(true);
  });

  test('operator: clientAuth leaf, CN and OU (the role) required, no SANs, 90d (max 398d), enrolled by no client (trellis issue only)', () => {
    const o = p('operator');
    expect(o.signer).toBe('issuing');
    expect(o.extendedKeyUsage).toEqual(['clientAuth']);
    expect(o.subject).toMatchObject({ allowed: ['CN', 'OU'], required: ['CN', 'OU'] });
    expect(o.san).toEqual({ required: false, maxNames: 0 });
    expect(o.validity).toEqual({ defaultSeconds: 90 * day, maxSeconds: 398 * day, backdateSeconds: 300 });
    expect(o.enrollment).toEqual([]);
  });

  test('audit-signer: root-signed leaf, digitalSignature + nonRepudiation, no EKU or SANs, 5y (max 10y), caIssuers only, never enrollable', () => {
    const a = p('audit-signer');
    expect(a.signer).toBe('root');
    expect(a.basicConstraints).toEqual({ ca: false });
    expect(a.keyUsage).toEqual(['digitalSignature', 'nonRepudiation']);
    expect(a.extendedKeyUsage).toBeUndefined();
    expect(a.keys).toEqual({ ecdsa: ['P-256', 'P-384'] });
    expect(a.san).toEqual({ required: false, maxNames: 0 });
    expect(a.validity).toEqual({ defaultSeconds: 1825 * day, maxSeconds: 10 * 365 * day, backdateSeconds: 0 });
    expect(a.urls).toEqual({ ocsp: false, caIssuers: true, crl: false });
    expect(a.enrollment).toEqual([]);
  });

  test('root-ca: self-signed CA, no pathLen, keyCertSign + cRLSign, 20y (max 25y), no EKU or URLs', () => {
    const r = p('root-ca');
    expect(r.signer).toBe('self');
    expect(r.basicConstraints).toEqual({ ca: true });
    expect(r.keyUsage).toEqual(['keyCertSign', 'cRLSign']);
    expect(r.extendedKeyUsage).toBeUndefined();
    expect(r.keys).toEqual({ rsa: { minBits: 2048, maxBits: 4096 }, ecdsa: ['P-256', 'P-384'] });
    expect(r.validity).toEqual({ defaultSeconds: 7300 * day, maxSeconds: 25 * 365 * day, backdateSeconds: 0 });
    expect(r.urls).toEqual({ ocsp: false, caIssuers: false, crl: false });
    expect(r.subject).toEqual({ fixed: {}, allowed: ['C', 'O', 'OU', 'CN'], required: ['CN'] });
  });

  test('issuing-ca: root-signed CA, pathLen 0, 5y (max 10y), caIssuers and CRL but no OCSP URL', () => {
    const i = p('issuing-ca');
    expect(i.signer).toBe('root');
    expect(i.basicConstraints).toEqual({ ca: true, pathLen: 0 });
    expect(i.keyUsage).toEqual(['digitalSignature', 'keyCertSign', 'cRLSign']);
    expect(i.validity).toEqual({ defaultSeconds: 1825 * day, maxSeconds: 3650 * day, backdateSeconds: 0 });
    expect(i.urls).toEqual({ ocsp: false, caIssuers: true, crl: true });
    expect(i.subject).toEqual({ fixed: {}, allowed: ['C', 'O', 'OU', 'CN'], required: ['CN'] });
    expect(i.nameConstraints).toBeUndefined();
  });

  test('ocsp-responder: OCSPSigning with nocheck, 7d (max 30d), no URLs, no SANs', () => {
    const o = p('ocsp-responder');
    expect(o.signer).toBe('issuing');
    expect(o.basicConstraints).toEqual({ ca: false });
    expect(o.keyUsage).toEqual(['digitalSignature']);
    expect(o.extendedKeyUsage).toEqual(['OCSPSigning']);
    expect(o.ocspNoCheck).toBe(true);
    expect(o.validity).toEqual({ defaultSeconds: 7 * day, maxSeconds: 30 * day, backdateSeconds: 300 });
    expect(o.urls).toEqual({ ocsp: false, caIssuers: false, crl: false });
    expect(o.san).toEqual({ required: false, maxNames: 0 });
    expect(o.subject).toEqual({ fixed: {}, allowed: ['CN', 'O'], required: ['CN'] });
  });

  test('server: serverAuth, DNS (wildcards) and IP SANs required, 90d (max 398d), backdate 5m', () => {
    const s = p('server');
    expect(s.extendedKeyUsage).toEqual(['serverAuth']);
    expect(s.keyUsage).toEqual(['digitalSignature']);
    expect(s.validity).toEqual({ defaultSeconds: 90 * day, maxSeconds: 398 * day, backdateSeconds: 300 });
    expect(s.san.required).toBe(true);
    expect(s.san.dns?.allowWildcard).toBe(true);
    expect(s.san.ip?.cidrs).toEqual(['0.0.0.0/0', '::/0']);
    const dns = new RegExp(s.san.dns!.patterns[0]!);
    for (const name of ['example.test', '*.example.test', 'localhost', 'a-1.b.example']) expect(dns.test(name)).toBe(true);
    for (const name of ['Example.test', 'a..b', 'x.*.example', 'a_b.example', '']) expect(dns.test(name)).toBe(false);
    expect(s.subject).toEqual({ fixed: {}, allowed: ['CN'], required: [] });
    expect(s.urls).toEqual({ ocsp: true, caIssuers: true, crl: true });
    expect(s.keys).toEqual({ rsa: { minBits: 2048, maxBits: 4096 }, ecdsa: ['P-256', 'P-384'], ed25519: true });
  });

  test('client: clientAuth, optional DNS/email/URI SANs, 365d (max 398d)', () => {
    const c = p('client');
    expect(c.extendedKeyUsage).toEqual(['clientAuth']);
    expect(c.validity).toEqual({ defaultSeconds: 365 * day, maxSeconds: 398 * day, backdateSeconds: 300 });
    expect(c.san.required).toBe(false);
    expect(Object.keys(c.san).sort()).toEqual(['dns', 'email', 'maxNames', 'required', 'uri']);
    expect(c.subject).toEqual({ fixed: {}, allowed: ['CN', 'O', 'OU'], required: ['CN'] });
    expect(c.urls).toEqual({ ocsp: true, caIssuers: true, crl: true });
    const uri = c.san.uri!.patterns.map((x) => new RegExp(x));
    for (const u of ['spiffe://example.test/ns/prod/sa/api', 'urn:uuid:2f1c4e0e-6a0b-4c43-9d63-1c5f0a1f7e55', 'https://svc.example.test/']) expect(uri.some((r) => r.test(u))).toBe(true);
    expect(uri.some((r) => r.test('http://plain.example.test/'))).toBe(false);
  });

  test('device: clientAuth, 365d (max 365d), backdate 1h, device id to serialNumber and urn:dev:trellis:{id}', () => {
    const d = p('device');
    expect(d.extendedKeyUsage).toEqual(['clientAuth']);
    expect(d.validity).toEqual({ defaultSeconds: 365 * day, maxSeconds: 365 * day, backdateSeconds: 3600 });
    expect(d.deviceId).toEqual({ from: ['serialNumber', 'CN'], pattern: '^[A-Za-z0-9._:-]{1,64}$', uriTemplate: 'urn:dev:trellis:{id}' });
    expect(d.subject).toEqual({ fixed: {}, allowed: ['CN', 'serialNumber'], required: [] });
    expect(d.san).toEqual({ required: false, maxNames: 1, uri: { patterns: ['^urn:dev:trellis:[A-Za-z0-9._%-]{1,192}$'] } });
    expect(d.keys).toEqual({ rsa: { minBits: 2048, maxBits: 4096 }, ecdsa: ['P-256', 'P-384'], ed25519: true });
    expect(d.urls).toEqual({ ocsp: true, caIssuers: true, crl: true });
    // The URI the RA builds (id percent-encoded) passes the profile's own URI pattern.
    const uri = d.deviceId!.uriTemplate.replace('{id}', encodeURIComponent('gw:01.A_b-9'));
    expect(new RegExp(d.san.uri!.patterns[0]!).test(uri)).toBe(true);
  });

  test('no leaf carries keyCertSign, and every profile is frozen', () => {
    for (const profile of profiles.values()) {
      expect(profile.keyUsage.includes('keyCertSign')).toBe(profile.basicConstraints.ca);
      expect(Object.isFrozen(profile) && Object.isFrozen(profile.validity) && Object.isFrozen(profile.keyUsage)).toBe(true);
    }
    expect(() => (p('server').keyUsage as string[]).push('keyCertSign')).toThrow(TypeError);
  });
});

describe('getProfile', () => {
  test('rejects: an unknown profile name, as notFound', () => {
    const err = (() => {
      try {
        return getProfile(new Map(), 'nope');
      } catch (e) {
        return e;
      }
    })();
    expect(isPkiError(err, 'notFound')).toBe(true);
    expect((err as Error).message).toBe('unknown profile "nope"');
  });
});

describe('loadProfiles', () => {
  test('accepts: .yaml and .yml, ignores other files and directories', async () => {
    const dir = dirWith({ 'short-server.yml': serverYaml.replace('default: 90d', 'default: 7d'), 'README.md': '# notes', 'server.yaml.bak': 'junk' });
    fs.mkdirSync(path.join(dir, 'old.yaml'));
    const profiles = await loadProfiles(dir);
    expect([...profiles.keys()]).toEqual(['short-server']);
    expect(getProfile(profiles, 'short-server').validity.defaultSeconds).toBe(7 * day);
  });

  test('rejects: a bad file, naming it (relative to the working directory) and the field', async () => {
    const err = await loadError('test/fixtures/profiles/bad-regex');
    expect(err.message).toMatch(/^test\/fixtures\/profiles\/bad-regex\/server\.yaml: san\.dns\.patterns\[0\]: invalid regular expression: .* \(line 14\)$/);
  });

  test('rejects: a bad file name', async () => {
    const err = await loadError(dirWith({ 'Bad_Name.yaml': serverYaml }));
    expect(err.message).toMatch(/Bad_Name\.yaml: profile name "Bad_Name" must be 1-63 lower-case letters/);
  });

  test('rejects: every bad file, one per line', async () => {
    const dir = dirWith({ 'a.yaml': serverYaml.replace('maxNames: 100', 'maxNames: -1'), 'b.yaml': serverYaml, 'c.yaml': `${serverYaml}extra: 1\n` });
    const lines = (await loadError(dir)).message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/\/a\.yaml: san\.maxNames: /);
    expect(lines[1]).toMatch(/\/c\.yaml: extra: unknown key/);
  });

  test('rejects: the same name as .yaml and .yml', async () => {
    const err = await loadError(dirWith({ 'server.yaml': serverYaml, 'server.yml': serverYaml }));
    expect(err.message).toMatch(/profile "server" is defined twice/);
  });

  test('rejects: a directory without profiles', async () => {
    expect((await loadError(dirWith({ 'notes.txt': 'x' }))).message).toMatch(/^no profiles \(\*\.yaml\) in /);
  });

  test('rejects: a directory that does not exist', async () => {
    expect((await loadError(path.join(tmp, 'missing'))).message).toMatch(/^cannot read profiles directory .*missing/);
  });
});

describe('loadProfile', () => {
  test('the profile name is the file name', async () => {
    const file = path.join(dirWith({ 'edge-server.yaml': serverYaml }), 'edge-server.yaml');
    await expect(loadProfile(file)).resolves.toMatchObject({ name: 'edge-server', extendedKeyUsage: ['serverAuth'] });
  });

  test('rejects: a file that cannot be read, as badProfile', async () => {
    await expect(loadProfile(path.join(tmp, 'absent.yaml'))).rejects.toMatchObject({ type: 'badProfile', message: expect.stringMatching(/absent\.yaml: cannot read profile/) });
  });
});

test('fieldPath writes zod paths the way the YAML reads', () => {
  expect(fieldPath([])).toBe('(top level)');
  expect(fieldPath(['san', 'dns', 'patterns', 0])).toBe('san.dns.patterns[0]');
  expect(fieldPath(['subject', 'fixed', 'CN'])).toBe('subject.fixed.CN');
});
