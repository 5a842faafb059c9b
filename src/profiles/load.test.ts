import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { parseDuration, formatDuration } from './duration.js';
import { defaultProfilesDir, getProfile, loadProfile, loadProfiles } from './load.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'profiles-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('shipped profiles', () => {
  test('all six load with the documented defaults', async () => {
    const p = await loadProfiles(defaultProfilesDir());
    expect([...p.keys()].sort()).toEqual(['client', 'device', 'issuing-ca', 'ocsp-responder', 'root-ca', 'server']);
    const server = getProfile(p, 'server');
    expect(server.extendedKeyUsage).toEqual(['serverAuth']);
    expect(server.validity.maxSeconds).toBe(398 * 86400);
    expect(server.san.required).toBe(true);
    expect(server.san.dns && server.san.ip).toBeTruthy();
    expect(getProfile(p, 'client').extendedKeyUsage).toEqual(['clientAuth']);
    const device = getProfile(p, 'device');
    expect(device.extendedKeyUsage).toEqual(['clientAuth']);
    expect(device.validity.defaultSeconds).toBe(365 * 86400);
    expect(device.deviceId?.from).toEqual(['serialNumber', 'CN']);
    const ocsp = getProfile(p, 'ocsp-responder');
    expect(ocsp.extendedKeyUsage).toEqual(['OCSPSigning']);
    expect(ocsp.ocspNoCheck).toBe(true);
    expect(ocsp.validity.maxSeconds).toBeLessThanOrEqual(30 * 86400);
    expect(getProfile(p, 'issuing-ca').basicConstraints).toEqual({ ca: true, pathLen: 0 });
    expect(getProfile(p, 'root-ca').signer).toBe('self');
  });

  test('unknown profile name is notFound', async () => {
    const p = await loadProfiles(defaultProfilesDir());
    expect(() => getProfile(p, 'nope')).toThrow(/unknown profile "nope"/);
  });
});

describe('profile validation', () => {
  const server = fs.readFileSync(path.join(defaultProfilesDir(), 'server.yaml'), 'utf8');
  const write = (name: string, text: string) => {
    const f = path.join(tmp, `${name}.yaml`);
    fs.writeFileSync(f, text);
    return f;
  };
  test.each<[string, string, RegExp]>([
    ['unknown top-level key', server + 'colour: blue\n', /x\.yaml: \(top level\): unknown key "colour"/],
    ['unknown nested key', server.replace('validity: {', 'validity: { maximum: 3d,'), /validity: unknown key "maximum"/],
    ['wrong type', server.replace('maxNames: 100', 'maxNames: many'), /san\.maxNames: /],
    ['default longer than max', server.replace('default: 90d', 'default: 400d'), /validity\.default: default is longer than max/],
    ['bad duration', server.replace('default: 90d', 'default: ninety'), /validity\.default: "ninety" is not a duration/],
    ['bad regex', server.replace("patterns: ['^(\\*\\.)?[a-z0-9.-]+$']", "patterns: ['([']"), /san\.dns\.patterns\[0\]: invalid regular expression/],
    ['bad CIDR', server.replace('0.0.0.0/0', '300.1.1.1/8'), /san\.ip\.cidrs\[0\]: invalid CIDR/],
    ['bad OID', server.replace('policies: []', 'policies: [not.an.oid]'), /policies\[0\]: not a dotted-decimal OID/],
    ['unknown key usage', server.replace('keyUsage: [digitalSignature]', 'keyUsage: [signEverything]'), /keyUsage\[0\]/],
    ['name constraints on a leaf', server + 'nameConstraints: { permitted: { dns: [example.com] } }\n', /nameConstraints: name constraints belong in CA profiles only/],
    ['fixed and allowed overlap', server.replace('fixed: {}', 'fixed: { CN: x }'), /subject\.fixed\.CN: CN is both fixed and allowed/],
    ['keyCertSign on a leaf', server.replace('keyUsage: [digitalSignature]', 'keyUsage: [digitalSignature, keyCertSign]'), /keyCertSign needs basicConstraints\.ca/],
    ['RSA below 2048', server.replace('minBits: 2048', 'minBits: 1024'), /keys\.rsa\.minBits/],
    ['duplicate YAML keys', server + 'description: again\n', /not valid YAML/],
  ])('rejects: %s', (_name, text, message) => {
    let err: unknown;
    try {
      loadProfile(write('x', text));
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, 'badProfile')).toBe(true);
    expect((err as Error).message).toMatch(message);
  });

  test('rejects: a bad file name', () => {
    expect(() => loadProfile(write('Bad_Name', server))).toThrow(/file name must be lower-case/);
  });

  test('operators can add their own profile', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'own-'));
    fs.writeFileSync(path.join(dir, 'short-server.yaml'), server.replace('default: 90d', 'default: 7d'));
    const p = await loadProfiles(dir);
    expect(getProfile(p, 'short-server').validity.defaultSeconds).toBe(7 * 86400);
  });
});

test('durations', () => {
  expect(parseDuration('90d')).toBe(7776000);
  expect(parseDuration('10y')).toBe(315360000);
  expect(parseDuration('5m')).toBe(300);
  expect(parseDuration('1.5d')).toBeNull();
  expect(parseDuration('')).toBeNull();
  expect(formatDuration(7776000)).toBe('90d');
});
