/**
 * Who may enroll under a profile: the `enrollment` list of each file, and the
 * rule that CA and OCSP-signer profiles are never enrollable by anyone.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { enrollmentRefusal } from './enrollment.js';
import { defaultProfilesDir, getProfile, loadProfiles, parseProfile } from './load.js';

type Yaml = Record<string, any>;
const shipped = (name: string): Yaml => YAML.parse(fs.readFileSync(path.join(defaultProfilesDir(), `${name}.yaml`), 'utf8'));

/** A shipped profile with one change, as YAML text. */
function variant(base: string, change: (p: Yaml) => void): string {
  const p = shipped(base);
  change(p);
  return YAML.stringify(p);
}

function rejection(text: string, name: string): string {
  try {
    parseProfile(name, text);
  } catch (err) {
    expect(isPkiError(err, 'badProfile')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('the profile was accepted');
}

describe('the shipped profiles', async () => {
  const profiles = await loadProfiles(defaultProfilesDir());
  test.each([
    ['server', ['api', 'acme']],
    ['client', ['api', 'acme']],
    ['device', ['api', 'acme', 'est']],
    ['root-ca', []],
    ['issuing-ca', []],
    ['ocsp-responder', []],
  ])('%s: enrollment %j', (name, channels) => {
    expect(getProfile(profiles, name).enrollment).toEqual(channels);
  });
});

describe('the enrollment key', () => {
  test('absent means no channel: only the operator CLI may use the profile', () => {
    expect(parseProfile('internal', variant('server', (p) => delete p.enrollment)).enrollment).toEqual([]);
  });

  test('accepts est before EST is served', () => {
    expect(parseProfile('s', variant('server', (p) => (p.enrollment = ['est']))).enrollment).toEqual(['est']);
  });

  test.each<[string, string, (p: Yaml) => void, RegExp]>([
    ['an unknown channel', 'server', (p) => (p.enrollment = ['api', 'scep']), /^x\.yaml: enrollment\[1\]: Invalid option: expected one of "api"\|"acme"\|"est" \(line \d+\)$/],
    ['a repeated channel', 'server', (p) => (p.enrollment = ['api', 'api']), /^x\.yaml: enrollment\[1\]: "api" is listed more than once/],
    ['the cli channel (it needs no listing)', 'server', (p) => (p.enrollment = ['cli']), /enrollment\[0\]: Invalid option/],
    ['not a list', 'server', (p) => (p.enrollment = 'api'), /enrollment: Invalid input: expected array/],
    ['a channel on the root CA profile', 'root-ca', (p) => (p.enrollment = ['api']), /^x\.yaml: enrollment: a CA profile \(basicConstraints\.ca: true\) is never enrollable: CA certificates come only from ceremonies; remove enrollment \(line \d+\)$/],
    ['a channel on the issuing CA profile', 'issuing-ca', (p) => (p.enrollment = ['acme']), /enrollment: a CA profile \(basicConstraints\.ca: true\) is never enrollable/],
    ['a channel on the OCSP responder profile', 'ocsp-responder', (p) => (p.enrollment = ['api', 'acme']), /^x\.yaml: enrollment: an OCSP signer profile \(extendedKeyUsage OCSPSigning\) is never enrollable: its holder could sign "good" answers for revoked certificates; Trellis issues responder certificates itself; remove enrollment \(line \d+\)$/],
    ['est on the OCSP responder profile', 'ocsp-responder', (p) => (p.enrollment = ['est']), /enrollment: an OCSP signer profile/],
    ['a channel on a leaf that adds OCSPSigning', 'server', (p) => ((p.extendedKeyUsage = ['serverAuth', 'OCSPSigning']), (p.enrollment = ['api'])), /enrollment: an OCSP signer profile \(extendedKeyUsage OCSPSigning\) is never enrollable/],
    ['a channel on a root-signed OCSP responder', 'ocsp-responder', (p) => ((p.signer = 'root'), (p.enrollment = ['api'])), /enrollment: .*is never enrollable/],
  ])('rejects %s', (_name, base, change, message) => {
    expect(rejection(variant(base, change), 'x')).toMatch(message);
  });

  test('an empty list on a CA or OCSP signer profile is fine', () => {
    expect(parseProfile('r', variant('root-ca', (p) => (p.enrollment = []))).enrollment).toEqual([]);
    expect(parseProfile('o', variant('ocsp-responder', (p) => (p.enrollment = []))).enrollment).toEqual([]);
  });
});

describe('enrollmentRefusal: what the RA answers per channel', async () => {
  const profiles = await loadProfiles(defaultProfilesDir());
  const p = (name: string) => getProfile(profiles, name);
  const internal = parseProfile('internal', variant('server', (y) => delete y.enrollment));
  const apiOnly = parseProfile('api-only', variant('client', (y) => (y.enrollment = ['api'])));

  test.each([
    ['server', 'api'],
    ['server', 'acme'],
    ['server', 'cli'],
    ['client', 'api'],
    ['device', 'est'],
    ['device', 'cli'],
  ])('allows %s through %s', (name, via) => {
    expect(enrollmentRefusal(p(name), via)).toBeNull();
  });

  test('the CLI may use a leaf profile that lists no channel; the API and ACME may not', () => {
    expect(enrollmentRefusal(internal, 'cli')).toBeNull();
    expect(enrollmentRefusal(internal, 'api')).toMatchObject({ type: 'forbidden', message: 'profile "internal" cannot be enrolled through api (its enrollment lists no channel)' });
    expect(enrollmentRefusal(apiOnly, 'acme')).toMatchObject({ type: 'forbidden', message: 'profile "api-only" cannot be enrolled through acme (its enrollment lists api)' });
    expect(enrollmentRefusal(apiOnly, 'est')).toMatchObject({ type: 'forbidden' });
  });

  test.each(['root-ca', 'issuing-ca', 'ocsp-responder'])('%s is refused on every channel, the CLI included', (name) => {
    for (const via of ['cli', 'api', 'acme', 'est', 'ceremony']) {
      const refusal = enrollmentRefusal(p(name), via);
      expect(refusal?.type).toBe('badProfile');
      expect(refusal?.message).toMatch(new RegExp(`^profile "${name}" is never enrollable`));
    }
  });
});
