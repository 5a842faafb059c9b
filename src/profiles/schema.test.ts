/**
 * Bad profile files, one per check: each case names the outcome and the
 * message must name the file and the field an operator has to fix.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { defaultProfilesDir, parseProfile } from './load.js';

type Yaml = Record<string, any>;
const shipped = (name: string): Yaml => YAML.parse(fs.readFileSync(path.join(defaultProfilesDir(), `${name}.yaml`), 'utf8'));

type Base = 'server' | 'issuing-ca' | 'device' | 'ocsp-responder' | 'root-ca' | 'audit-signer';

/** A shipped profile with one change. */
function variant(base: Base, change: (p: Yaml) => void): string {
  const p = shipped(base);
  change(p);
  return YAML.stringify(p);
}

function rejection(text: string, name = 'server'): Error {
  try {
    parseProfile(name, text);
  } catch (err) {
    expect(isPkiError(err, 'badProfile')).toBe(true);
    return err as Error;
  }
  throw new Error('the profile was accepted');
}

const leaf = (change: (p: Yaml) => void) => variant('server', change);
const ca = (change: (p: Yaml) => void) => variant('issuing-ca', change);

describe('rejects bad profile files, naming file and field', () => {
  test.each<[string, Base, (p: Yaml) => void, RegExp]>([
    // strict objects at every level
    ['an unknown key at top level', 'server', (p) => (p.colour = 'blue'), /^server\.yaml: colour: unknown key \(line \d+\)$/],
    ['an unknown nested key', 'server', (p) => (p.validity.maximum = '3d'), /^server\.yaml: validity\.maximum: unknown key/],
    ['an unknown key three levels down', 'server', (p) => (p.san.dns.wildcards = true), /san\.dns\.wildcards: unknown key/],
    ['an unknown subject attribute', 'server', (p) => (p.subject.fixed = { E: 'x' }), /subject\.fixed\.E: unknown attribute E: use C, ST, L, O, OU, CN, serialNumber or a name declared in subject\.attributes/],
    // types and presence
    ['a wrong type', 'server', (p) => (p.san.maxNames = 'many'), /^server\.yaml: san\.maxNames: Invalid input: expected number/],
    ['a missing key', 'server', (p) => delete p.urls, /^server\.yaml: urls: is missing$/],
    ['a missing duration', 'server', (p) => delete p.validity.max, /^server\.yaml: validity\.max: is missing \(line \d+\)$/],
    ['a non-integer', 'server', (p) => (p.san.maxNames = 1.5), /san\.maxNames: /],
    ['a blank description', 'server', (p) => (p.description = '  '), /description: must not be empty/],
    ['an unknown signer', 'server', (p) => (p.signer = 'intermediate'), /signer: Invalid option/],
    // validity
    ['a bad duration string', 'server', (p) => (p.validity.default = 'ninety'), /validity\.default: "ninety" is not a duration/],
    ['a fractional duration', 'server', (p) => (p.validity.default = '1.5d'), /validity\.default: "1\.5d" is not a duration/],
    ['a duration without unit', 'server', (p) => (p.validity.max = 90), /validity\.max: expected a duration such as 90d/],
    ['default longer than max', 'server', (p) => (p.validity.default = '400d'), /validity\.default: default \(400d\) is longer than max \(398d\)/],
    ['a zero validity', 'server', (p) => (p.validity.default = '0s'), /validity\.default: must be longer than 0s/],
    ['a max over 100 years', 'issuing-ca', (p) => (p.validity.max = '101y'), /validity\.max: 101y is longer than 100y/],
    ['backdating over 48 hours', 'server', (p) => (p.validity.backdate = '3d'), /validity\.backdate: 3d is more than 48h/],
    ['backdating as long as the validity', 'server', (p) => Object.assign(p.validity, { default: '1h', backdate: '1h' }), /validity\.backdate: 1h must be shorter than the default validity/],
    // keys
    ['RSA under 2048 bits', 'server', (p) => (p.keys.rsa.minBits = 1024), /keys\.rsa\.minBits: RSA keys under 2048 bits/],
    ['RSA over 16384 bits', 'server', (p) => (p.keys.rsa.maxBits = 32768), /keys\.rsa\.maxBits: RSA keys over 16384 bits/],
    ['RSA minBits above maxBits', 'server', (p) => (p.keys.rsa = { minBits: 4096, maxBits: 2048 }), /keys\.rsa\.minBits: minBits \(4096\) is above maxBits \(2048\)/],
    ['an unknown curve', 'server', (p) => (p.keys.ecdsa = ['P-521']), /keys\.ecdsa\[0\]: Invalid option/],
    ['a repeated curve', 'server', (p) => (p.keys.ecdsa = ['P-256', 'P-256']), /keys\.ecdsa\[1\]: "P-256" is listed more than once/],
    ['no key type at all', 'server', (p) => (p.keys = { ed25519: false }), /keys: allows no key type/],
    // key usage, EKU, basic constraints
    ['an unknown key usage', 'server', (p) => (p.keyUsage = ['signEverything']), /keyUsage\[0\]: Invalid option/],
    ['no key usage', 'server', (p) => (p.keyUsage = []), /keyUsage: at least one key usage/],
    ['a repeated key usage', 'server', (p) => p.keyUsage.push('digitalSignature'), /keyUsage\[1\]: "digitalSignature" is listed more than once/],
    ['an unknown extended key usage', 'server', (p) => (p.extendedKeyUsage = ['anything']), /extendedKeyUsage\[0\]: Invalid option/],
    ['keyCertSign on a leaf', 'server', (p) => p.keyUsage.push('keyCertSign'), /keyUsage\[1\]: keyCertSign is for CA profiles only/],
    ['cRLSign on a leaf', 'server', (p) => p.keyUsage.push('cRLSign'), /keyUsage\[1\]: cRLSign is for CA profiles only/],
    ['encipherOnly without keyAgreement', 'server', (p) => p.keyUsage.push('encipherOnly'), /keyUsage\[1\]: encipherOnly needs keyAgreement/],
    ['a CA without keyCertSign', 'issuing-ca', (p) => (p.keyUsage = ['digitalSignature', 'cRLSign']), /^issuing-ca\.yaml: keyUsage: a CA profile needs keyCertSign/],
    ['pathLen on a leaf', 'server', (p) => (p.basicConstraints.pathLen = 0), /basicConstraints\.pathLen: pathLen needs basicConstraints\.ca: true/],
    ['a negative pathLen', 'issuing-ca', (p) => (p.basicConstraints.pathLen = -1), /basicConstraints\.pathLen: /],
    // signer
    ['a self-signed leaf', 'server', (p) => (p.signer = 'self'), /signer: a self-signed profile is a root CA/],
    ['a CA signed by the issuing CA', 'issuing-ca', (p) => (p.signer = 'issuing'), /signer: the issuing CA signs end-entity certificates only/],
    ['a TLS leaf signed by the root', 'server', (p) => (p.signer = 'root'), /signer: the root signs CA, OCSP responder and infrastructure certificates only/],
    ['a root-signed audit signer with a SAN', 'audit-signer', (p) => (p.san = { required: false, maxNames: 1, ip: { cidrs: ['192.0.2.0/24'] } }), /signer: the root signs CA, OCSP responder and infrastructure certificates only/],
    ['a root-signed audit signer with keyEncipherment', 'audit-signer', (p) => p.keyUsage.push('keyEncipherment'), /signer: the root signs CA, OCSP responder and infrastructure certificates only/],
    ['a root-signed audit signer with an EKU', 'audit-signer', (p) => (p.extendedKeyUsage = ['clientAuth']), /signer: the root signs CA, OCSP responder and infrastructure certificates only/],
    ['a root with an AIA URL', 'root-ca', (p) => (p.urls.caIssuers = true), /^root-ca\.yaml: urls\.caIssuers: a self-signed root has no issuer/],
    // name constraints
    ['name constraints on a leaf', 'server', (p) => (p.nameConstraints = { permitted: { dns: ['example.com'] } }), /nameConstraints: name constraints belong in CA profiles only/],
    ['empty name constraints', 'issuing-ca', (p) => (p.nameConstraints = {}), /nameConstraints: needs permitted or excluded/],
    ['a permitted set that lists nothing', 'issuing-ca', (p) => (p.nameConstraints = { permitted: {} }), /nameConstraints\.permitted: lists no names/],
    ['an empty list of DNS constraints', 'issuing-ca', (p) => (p.nameConstraints = { permitted: { dns: [] } }), /nameConstraints\.permitted\.dns: /],
    ['a DNS constraint with a leading dot', 'issuing-ca', (p) => (p.nameConstraints = { permitted: { dns: ['.example.com'] } }), /nameConstraints\.permitted\.dns\[0\]: ".example.com": write the domain without a leading dot/],
    ['a bad IP constraint', 'issuing-ca', (p) => (p.nameConstraints = { excluded: { ip: ['10.0.0.0/33'] } }), /nameConstraints\.excluded\.ip\[0\]: .*at most \/32/],
    ['an unknown constraint type', 'issuing-ca', (p) => (p.nameConstraints = { permitted: { dn: ['O=x'] } }), /nameConstraints\.permitted\.dn: unknown key/],
    // subject
    ['an attribute both fixed and allowed', 'server', (p) => (p.subject.fixed = { CN: 'x' }), /subject\.fixed\.CN: CN is both fixed and allowed/],
    ['a required attribute that is not allowed', 'server', (p) => (p.subject.required = ['O']), /subject\.required\[0\]: O is required but not in subject\.allowed/],
    ['a repeated allowed attribute', 'server', (p) => (p.subject.allowed = ['CN', 'CN']), /subject\.allowed\[1\]: "CN" is listed more than once/],
    ['a country that is not ISO 3166', 'server', (p) => (p.subject.fixed = { C: 'Germany' }), /subject\.fixed\.C: must be 1\.\.2 characters/],
    ['a lower-case country', 'server', (p) => (p.subject.fixed = { C: 'de' }), /subject\.fixed\.C: must be an ISO 3166 two-letter/],
    ['an O over 64 characters', 'server', (p) => (p.subject.fixed = { O: 'x'.repeat(65) }), /subject\.fixed\.O: must be 1\.\.64 characters/],
    ['a fixed value that is not a string', 'server', (p) => (p.subject.fixed = { O: 42 }), /subject\.fixed\.O: Invalid input: expected string/],
    // SANs
    ['a regular expression that does not compile', 'server', (p) => (p.san.dns.patterns = ['([']), /^server\.yaml: san\.dns\.patterns\[0\]: invalid regular expression/],
    ['an unanchored pattern', 'server', (p) => (p.san.dns.patterns = ['example\\.com']), /san\.dns\.patterns\[0\]: pattern must be anchored/],
    ['no patterns', 'server', (p) => (p.san.dns.patterns = []), /san\.dns\.patterns: /],
    ['a bad CIDR', 'server', (p) => (p.san.ip.cidrs = ['300.1.1.1/8']), /san\.ip\.cidrs\[0\]: "300\.1\.1\.1\/8" is not a CIDR/],
    ['a CIDR with host bits', 'server', (p) => (p.san.ip.cidrs = ['192.0.2.1/24']), /san\.ip\.cidrs\[0\]: .*host bits set: write 192\.0\.2\.0\/24/],
    ['required SANs with no SAN type', 'server', (p) => (p.san = { required: true, maxNames: 1 }), /san\.required: SANs are required but no SAN type is allowed/],
    ['SAN types with maxNames 0', 'server', (p) => (p.san.maxNames = 0), /san\.maxNames: is 0, yet SAN types are allowed/],
    // policies
    ['a bad OID', 'server', (p) => (p.policies = ['not.an.oid']), /policies\[0\]: "not\.an\.oid" is not a dotted-decimal OID/],
    ['an OID with a second arc over 39', 'server', (p) => (p.policies = ['1.99.1']), /policies\[0\]: .*second arc is at most 39/],
    ['a repeated policy OID', 'server', (p) => (p.policies = ['2.23.140.1.2.1', '2.23.140.1.2.1']), /policies\[1\]: "2\.23\.140\.1\.2\.1" is listed more than once/],
    // OCSP responder
    ['ocspNoCheck without OCSPSigning', 'server', (p) => (p.ocspNoCheck = true), /ocspNoCheck: ocsp-nocheck is for OCSP responder certificates/],
    ['ocspNoCheck with an OCSP URL', 'ocsp-responder', (p) => (p.urls.ocsp = true), /^ocsp-responder\.yaml: urls\.ocsp: with ocspNoCheck/],
    ['OCSPSigning without digitalSignature', 'ocsp-responder', (p) => (p.keyUsage = ['nonRepudiation']), /keyUsage: an OCSPSigning certificate signs responses/],
    // device identity
    ['a URI template without {id}', 'device', (p) => (p.deviceId.uriTemplate = 'urn:dev:trellis:'), /^device\.yaml: deviceId\.uriTemplate: must contain \{id\} exactly once/],
    ['a URI template with {id} twice', 'device', (p) => (p.deviceId.uriTemplate = 'urn:{id}:{id}'), /deviceId\.uriTemplate: must contain \{id\} exactly once/],
    ['a URI template that is not a URI', 'device', (p) => (p.deviceId.uriTemplate = '{id}'), /deviceId\.uriTemplate: must be an absolute URI/],
    ['a device id pattern that does not compile', 'device', (p) => (p.deviceId.pattern = '^[a-$'), /deviceId\.pattern: invalid regular expression/],
    ['a device id source that is not allowed', 'device', (p) => (p.subject.allowed = ['serialNumber']), /deviceId\.from\[1\]: CN must be in subject\.allowed/],
    ['a device id without serialNumber allowed', 'device', (p) => (p.subject.allowed = ['CN']), /subject\.allowed: deviceId writes the subject serialNumber/],
    ['a device id without URI SANs', 'device', (p) => (p.san = { required: false, maxNames: 1, dns: { patterns: ['^a$'], allowWildcard: false } }), /san\.uri: deviceId adds a URI SAN/],
    ['a device id on a CA', 'issuing-ca', (p) => (p.deviceId = { from: ['CN'], pattern: '^.+$', uriTemplate: 'urn:x:{id}' }), /deviceId: device identities belong in end-entity profiles/],
  ])('rejects: %s', (_why, base, change, message) => {
    expect(rejection(variant(base, change), base).message).toMatch(message);
  });
});

describe('rejects files that are not profile YAML', () => {
  const server = fs.readFileSync(path.join(defaultProfilesDir(), 'server.yaml'), 'utf8');
  test.each<[string, string, RegExp]>([
    ['a duplicate YAML key', `${server}description: again\n`, /^server\.yaml: not valid YAML: Map keys must be unique/],
    ['a YAML syntax error', 'description: [unclosed\n', /^server\.yaml: not valid YAML: /],
    ['an empty file', '', /^server\.yaml: expected a YAML mapping/],
    ['a list at top level', '- description: x\n', /^server\.yaml: expected a YAML mapping/],
    ['a scalar at top level', 'server\n', /^server\.yaml: expected a YAML mapping/],
  ])('rejects: %s', (_why, text, message) => {
    expect(rejection(text).message).toMatch(message);
  });

  test.each(['Server', 'bad_name', '-server', 'a'.repeat(64), ''])('rejects: the file name "%s"', (name) => {
    expect(rejection(server, name).message).toMatch(/profile name ".*" must be 1-63 lower-case letters, digits and dashes/);
  });
});

describe('error messages', () => {
  test('point at the line of the field', () => {
    const text = ['description: x', 'signer: issuing', 'keys: { ed25519: true }', 'validity:', '  default: 90d', '  max: 9x'].join('\n');
    expect(rejection(text).message).toMatch(/validity\.max: "9x" is not a duration.* \(line 6\)/);
  });

  test('list every problem in the file, up to five', () => {
    const text = leaf((p) => {
      p.colour = 'blue';
      p.validity.default = 'soon';
    });
    const message = rejection(text).message;
    expect(message).toMatch(/colour: unknown key/);
    expect(message).toMatch(/validity\.default: "soon" is not a duration/);
    const many = rejection(leaf((p) => Object.assign(p, { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7 }))).message;
    expect(many).toMatch(/; and 2 more$/);
  });
});

describe('accepts', () => {
  test('optional keys left out, with their defaults', () => {
    const p = parseProfile('minimal', leaf((y) => {
      delete y.validity.backdate;
      delete y.subject.fixed;
      delete y.subject.required;
      delete y.policies;
      delete y.ocspNoCheck;
      delete y.extendedKeyUsage;
    }));
    expect(p.validity.backdateSeconds).toBe(0);
    expect(p.subject).toEqual({ fixed: {}, allowed: ['CN'], required: [] });
    expect(p.policies).toEqual([]);
    expect(p.ocspNoCheck).toBe(false);
    expect(p).not.toHaveProperty('extendedKeyUsage');
  });

  test('name constraints on a CA', () => {
    const p = parseProfile('constrained-ca', ca((y) => (y.nameConstraints = { permitted: { dns: ['example.com'], ip: ['10.0.0.0/8', 'fd00::/8'] }, excluded: { email: ['.example.net'] } })));
    expect(p.nameConstraints).toEqual({ permitted: { dns: ['example.com'], ip: ['10.0.0.0/8', 'fd00::/8'] }, excluded: { email: ['.example.net'] } });
  });

  test('an OCSP responder signed by the root (CA/B BR §6.1.7)', () => {
    expect(parseProfile('root-ocsp', variant('ocsp-responder', (y) => (y.signer = 'root'))).signer).toBe('root');
  });

  test('fixed attributes the request cannot change, and policy OIDs', () => {
    const p = parseProfile('org-server', leaf((y) => {
      y.subject.fixed = { C: 'DE', O: 'Example Org' };
      y.policies = ['2.23.140.1.2.1', '1.3.6.1.4.1.99999.1.1'];
    }));
    expect(p.subject.fixed).toEqual({ C: 'DE', O: 'Example Org' });
    expect(p.policies).toEqual(['2.23.140.1.2.1', '1.3.6.1.4.1.99999.1.1']);
  });
});
