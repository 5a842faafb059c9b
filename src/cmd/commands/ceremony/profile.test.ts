import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { UsageError } from '../../../cli/args.js';
import { isPkiError } from '../../../errors/pki-error.js';
import { defaultProfilesDir, loadProfile } from '../../../profiles/load.js';
import type { Profile } from '../../../profiles/types.js';
import { ceremonySubject, checkCeremonyProfile, declaredAttributes } from './profile.js';

const VID = '1.3.6.1.4.1.37244.2.1';
const PID = '1.3.6.1.4.1.37244.2.2';
const p: Record<'root' | 'issuing' | 'paa' | 'pai' | 'dac', Profile> = {} as never;
beforeAll(async () => {
  const dir = defaultProfilesDir();
  p.root = await loadProfile(path.join(dir, 'root-ca.yaml'));
  p.issuing = await loadProfile(path.join(dir, 'issuing-ca.yaml'));
  p.paa = await loadProfile(path.join(dir, 'examples', 'matter-paa.yaml'));
  p.pai = await loadProfile(path.join(dir, 'examples', 'matter-pai.yaml'));
  p.dac = await loadProfile(path.join(dir, 'examples', 'matter-dac.yaml'));
});

const root = { id: 'paa', role: 'root' as const };
const issuing = { id: 'issuing', role: 'issuing' as const };

describe('checkCeremonyProfile', () => {
  test('accepts: a self-signed CA profile for a root, a root-signed CA profile under a root or an external root', () => {
    expect(() => checkCeremonyProfile(p.paa, 'root')).not.toThrow();
    expect(() => checkCeremonyProfile(p.root, 'root')).not.toThrow();
    expect(() => checkCeremonyProfile(p.pai, 'issuing', root)).not.toThrow();
    expect(() => checkCeremonyProfile(p.pai, 'issuing')).not.toThrow();
  });

  test.each([
    ['rejects: a leaf profile for a root', () => p.dac, 'root' as const, undefined, /--profile matter-dac: not a CA profile/],
    ['rejects: an issuing-CA profile for a root', () => p.pai, 'root' as const, undefined, /a root needs a self-signed CA profile \(signer: self\), this one has signer: root/],
    ['rejects: a root profile for an issuing CA', () => p.paa, 'issuing' as const, root, /--profile matter-paa: a self-signed \(root\) profile; use it with trellis ceremony root/],
    ['rejects: a root-signed profile under an issuing parent', () => p.pai, 'issuing' as const, issuing, /signed by a root CA \(signer: root\), but the parent "issuing" is a issuing CA/],
  ])('%s', (_name, prof, kind, parent, message) => {
    expect(() => checkCeremonyProfile(prof(), kind, parent)).toThrow(expect.objectContaining({ constructor: UsageError, message: expect.stringMatching(message) }));
  });
});

describe('--subject-attr', () => {
  test('names and OIDs the profile declares become values keyed by OID', () => {
    expect(declaredAttributes(p.pai, ['matterVID=FFF1', `${PID}=8000`])).toEqual({ [VID]: 'FFF1', [PID]: '8000' });
    expect(ceremonySubject(p.paa, { CN: 'Matter PAA' }, ['matterVID=FFF1'])).toEqual({ CN: 'Matter PAA', [VID]: 'FFF1' });
    expect(ceremonySubject(p.root, { CN: 'Root' }, [])).toEqual({ CN: 'Root' });
  });

  test.each([
    ['rejects: a name the profile does not declare', () => p.pai, ['matterFID=0001'], /--subject-attr matterFID: not an attribute of profile "matter-pai" \(it declares matterVID \(1\.3\.6\.1\.4\.1\.37244\.2\.1\), matterPID/],
    ['rejects: a declared name in another case', () => p.pai, ['mattervid=FFF1'], /--subject-attr mattervid: not an attribute of profile "matter-pai"/],
    ['rejects: an OID the profile does not declare', () => p.paa, [`${PID}=8000`], /--subject-attr 1\.3\.6\.1\.4\.1\.37244\.2\.2: not an attribute of profile "matter-paa" \(it declares matterVID/],
    ['rejects: any attribute for a profile that declares none', () => p.issuing, ['matterVID=FFF1'], /not an attribute of profile "issuing-ca" \(it declares none under subject\.attributes\)/],
    ['rejects: no "="', () => p.pai, ['matterVID'], /--subject-attr "matterVID": expected NAME=VALUE/],
    ['rejects: an empty value', () => p.pai, ['matterVID='], /--subject-attr "matterVID=": expected NAME=VALUE/],
    ['rejects: the same attribute twice (by name and OID)', () => p.pai, ['matterVID=FFF1', `${VID}=FFF2`], /--subject-attr matterVID is given twice/],
  ])('%s: UsageError', (_name, prof, pairs, message) => {
    expect(() => declaredAttributes(prof(), pairs)).toThrow(expect.objectContaining({ constructor: UsageError, message: expect.stringMatching(message) }));
  });

  test.each([
    ['rejects: a value off the pattern', () => p.pai, ['matterVID=fff1'], /subject matterVID \(1\.3\.6\.1\.4\.1\.37244\.2\.1\) "fff1" does not match \^\[0-9A-F\]\{4\}\$ \(profile "matter-pai"\)/],
    ['rejects: a required attribute missing', () => p.pai, ['matterPID=8000'], /profile "matter-pai" requires subject matterVID \(1\.3\.6\.1\.4\.1\.37244\.2\.1\)/],
  ])("%s: the profile's own subject check (badCSR)", (_name, prof, pairs, message) => {
    let err: unknown;
    try {
      ceremonySubject(prof(), { CN: 'Matter PAI' }, pairs);
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, 'badCSR')).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});
