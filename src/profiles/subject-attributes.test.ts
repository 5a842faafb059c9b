/**
 * `subject.attributes`: attribute types named by OID (Matter's VID and PID),
 * declared once and used by name in fixed, allowed and required.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { defaultProfilesDir, loadProfiles, parseProfile } from './load.js';
import { subjectKeyLabel } from './types.js';

type Yaml = Record<string, any>;
const vid = { name: 'matterVID', oid: '1.3.6.1.4.1.37244.2.1', pattern: '^[0-9A-F]{4}$', encoding: 'utf8' };
const pid = { name: 'matterPID', oid: '1.3.6.1.4.1.37244.2.2', pattern: '^[0-9A-F]{4}$' };

/** The shipped device-free client profile with a subject that declares VID and PID. */
function withAttributes(change: (subject: Yaml) => void = () => {}): string {
  const p = YAML.parse(fs.readFileSync(path.join(defaultProfilesDir(), 'client.yaml'), 'utf8')) as Yaml;
  p.subject = { attributes: [{ ...vid }, { ...pid }], fixed: {}, allowed: ['CN', 'matterVID', 'matterPID'], required: ['matterVID'] };
  change(p.subject);
  return YAML.stringify(p);
}

function rejection(text: string): string {
  try {
    parseProfile('client', text);
  } catch (err) {
    expect(isPkiError(err, 'badProfile')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('the profile was accepted');
}

describe('accepts', () => {
  test('declared attributes, used by name, become OIDs in the loaded profile (encoding utf8 by default)', () => {
    const p = parseProfile('client', withAttributes((s) => {
      s.fixed = { matterPID: '8000' };
      s.allowed = ['CN', 'matterVID'];
    }));
    expect(p.subject).toEqual({
      attributes: [
        { name: 'matterVID', oid: '1.3.6.1.4.1.37244.2.1', pattern: '^[0-9A-F]{4}$', encoding: 'utf8' },
        { name: 'matterPID', oid: '1.3.6.1.4.1.37244.2.2', pattern: '^[0-9A-F]{4}$', encoding: 'utf8' },
      ],
      fixed: { '1.3.6.1.4.1.37244.2.2': '8000' },
      allowed: ['CN', '1.3.6.1.4.1.37244.2.1'],
      required: ['1.3.6.1.4.1.37244.2.1'],
    });
    expect(subjectKeyLabel(p, '1.3.6.1.4.1.37244.2.1')).toBe('matterVID (1.3.6.1.4.1.37244.2.1)');
    expect(subjectKeyLabel(p, 'CN')).toBe('CN');
  });

  test('the three Matter examples load from ca-profiles/examples, and the default directory does not hold them', async () => {
    const examples = await loadProfiles(path.join(defaultProfilesDir(), 'examples'));
    expect([...examples.keys()]).toEqual(['matter-dac', 'matter-paa', 'matter-pai']);
    const [dac, pai, paa] = ['matter-dac', 'matter-pai', 'matter-paa'].map((n) => examples.get(n)!);
    expect(paa).toMatchObject({ signer: 'self', keys: { ecdsa: ['P-256'] }, basicConstraints: { ca: true, pathLen: 1 }, keyUsage: ['keyCertSign', 'cRLSign'] });
    expect(pai).toMatchObject({ signer: 'root', keys: { ecdsa: ['P-256'] }, basicConstraints: { ca: true, pathLen: 0 } });
    expect(pai!.subject.required).toEqual(['CN', '1.3.6.1.4.1.37244.2.1']);
    expect(dac).toMatchObject({ signer: 'issuing', keys: { ecdsa: ['P-256'] }, basicConstraints: { ca: false }, keyUsage: ['digitalSignature'], urls: { ocsp: false, caIssuers: false, crl: false } });
    expect(dac!.subject.required).toEqual(['1.3.6.1.4.1.37244.2.1', '1.3.6.1.4.1.37244.2.2']);
    for (const p of [dac, pai, paa]) expect(p!.keys).toEqual({ ecdsa: ['P-256'] });
    const shipped = await loadProfiles(defaultProfilesDir());
    expect([...shipped.keys()].filter((n) => n.startsWith('matter'))).toEqual([]);
  });
});

describe('rejects, naming the field and line', () => {
  test.each<[string, (s: Yaml) => void, RegExp]>([
    ['a name used but not declared', (s) => s.allowed.push('matterXID'), /subject\.allowed\[3\]: unknown attribute matterXID: use C, ST, L, O, OU, CN, serialNumber or a name declared in subject\.attributes \(line \d+\)/],
    ['a required name not declared', (s) => (s.required = ['matterXID']), /subject\.required\[0\]: unknown attribute matterXID/],
    ['a fixed name not declared', (s) => (s.fixed = { matterXID: '1' }), /subject\.fixed\.matterXID: unknown attribute matterXID/],
    ['a fixed value that does not match the pattern', (s) => Object.assign(s, { fixed: { matterPID: 'fff1' }, allowed: ['CN', 'matterVID'] }), /subject\.fixed\.matterPID: "fff1" does not match the pattern of matterPID \(\^\[0-9A-F\]\{4\}\$\)/],
    ['a fixed value over 64 characters', (s) => Object.assign(s, { attributes: [vid, { ...pid, pattern: '^.*$' }], fixed: { matterPID: 'x'.repeat(65) }, allowed: ['CN', 'matterVID'] }), /subject\.fixed\.matterPID: must be 1\.\.64 characters/],
    ['an attribute both fixed and allowed', (s) => (s.fixed = { matterPID: '8000' }), /subject\.fixed\.matterPID: matterPID is both fixed and allowed/],
    ['a declared attribute neither fixed nor allowed', (s) => (s.allowed = ['CN', 'matterVID']), /subject\.attributes\[1\]\.name: matterPID is declared but neither fixed nor allowed/],
    ['a name of a standard attribute', (s) => (s.attributes[0].name = 'cn'), /subject\.attributes\[0\]\.name: cn is the standard attribute CN: choose another name/],
    ['a name declared twice', (s) => (s.attributes[1].name = 'matterVID'), /subject\.attributes\[1\]\.name: matterVID is declared more than once/],
    ['an OID declared twice', (s) => (s.attributes[1].oid = vid.oid), /subject\.attributes\[1\]\.oid: 1\.3\.6\.1\.4\.1\.37244\.2\.1 is declared more than once/],
    ['the OID of a standard attribute', (s) => (s.attributes[1].oid = '2.5.4.3'), /subject\.attributes\[1\]\.oid: 2\.5\.4\.3 is CN: use CN in allowed or fixed instead/],
    ['the emailAddress OID', (s) => (s.attributes[1].oid = '1.2.840.113549.1.9.1'), /is emailAddress: email addresses belong in the SAN/],
    ['an OID that is not dotted decimal', (s) => (s.attributes[1].oid = '1.3.6.1.4.1.037244'), /subject\.attributes\[1\]\.oid: "1\.3\.6\.1\.4\.1\.037244" is not a dotted-decimal OID/],
    ['an OID YAML reads as a number', (s) => (s.attributes[1].oid = 2.5), /subject\.attributes\[1\]\.oid: expected a dotted-decimal OID .*quote an OID with a single dot/],
    ['an OID missing', (s) => delete s.attributes[1].oid, /subject\.attributes\[1\]\.oid: is missing/],
    ['an unanchored pattern', (s) => (s.attributes[1].pattern = '[0-9A-F]{4}'), /subject\.attributes\[1\]\.pattern: pattern must be anchored/],
    ['an encoding other than utf8', (s) => (s.attributes[1].encoding = 'printable'), /subject\.attributes\[1\]\.encoding: Invalid input: expected "utf8"/],
    ['an unknown key in a declaration', (s) => (s.attributes[1].critical = true), /subject\.attributes\[1\]\.critical: unknown key/],
    ['a bad attribute name', (s) => (s.attributes[1].name = '1pid'), /subject\.attributes\[1\]\.name: must be a letter followed by letters, digits or dashes/],
  ])('%s', (_, change, message) => {
    expect(rejection(withAttributes(change))).toMatch(message);
  });
});
