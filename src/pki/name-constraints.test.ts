import fs from 'node:fs';
import { afterAll, describe, expect, test } from 'vitest';
import { makeCsr, openssl, opensslRun, tempDir } from '../../test/helpers/openssl.js';
import { readCertificate } from './certificate.js';
import { children, ctx, oid, readOne, seq, setOf, utf8, value } from './der.js';
import { nameConstraintsExtension, type NameConstraintSet } from './extensions.js';
import { encodeName } from './name.js';
import {
  constrainedNames, constrainedNamesOfCertificate, decodeNameConstraints, dnsMatches, emailMatches, findNameConstraintViolation, sanNames,
  uriHost, type ConstrainingCa,
} from './name-constraints.js';
import { OID } from './oids.js';
import type { GeneralName } from './general-name.js';

/** The extnValue of a nameConstraints extension built by the encoder the CA uses. */
const ncValue = (permitted?: NameConstraintSet, excluded?: NameConstraintSet): Buffer => {
  // Extension ::= SEQUENCE { extnID, critical, extnValue OCTET STRING }
  const [, , extnValue] = children(readOne(nameConstraintsExtension(permitted, excluded)));
  return value(extnValue!);
};
const ca = (permitted?: NameConstraintSet, excluded?: NameConstraintSet): ConstrainingCa => ({ name: 'CN=Test CA', constraints: decodeNameConstraints(ncValue(permitted, excluded)) });
const leaf = (sans: GeneralName[], subject: Parameters<typeof encodeName>[0] = {}, endEntity = true) => constrainedNames(encodeName(subject), sanNames(sans), endEntity);
const verdict = (c: ConstrainingCa, sans: GeneralName[], subject: Parameters<typeof encodeName>[0] = {}) => findNameConstraintViolation(leaf(sans, subject), [c])?.detail ?? 'ok';
const dns = (value: string): GeneralName => ({ type: 'dns', value });
const ip = (value: string): GeneralName => ({ type: 'ip', value });
const email = (value: string): GeneralName => ({ type: 'email', value });
const uri = (value: string): GeneralName => ({ type: 'uri', value });

describe('dNSName', () => {
  test.each<[string, string, boolean]>([
    ['example.com', 'example.com', true],
    ['www.example.com', 'example.com', true],
    ['a.b.example.com', 'example.com', true],
    ['notexample.com', 'example.com', false],
    ['example.com.evil.test', 'example.com', false],
    ['WWW.Example.COM', 'example.COM', true],
    ['www.example.com', '.example.com', true],
    ['example.com', '.example.com', false],
    ['anything.test', '', true],
    ['*.example.com', 'example.com', true],
  ])('%s within %s: %s', (name, base, want) => {
    expect(dnsMatches(name, base)).toBe(want);
  });

  test('permitted: inside passes, outside is refused naming both', () => {
    const c = ca({ dns: ['example.com'] });
    expect(verdict(c, [dns('www.example.com')])).toBe('ok');
    expect(verdict(c, [dns('www.example.com'), dns('www.other.test')])).toBe('dNSName "www.other.test" is not within the permitted dNSName subtrees (example.com) of CA "CN=Test CA" (RFC 5280 §4.2.1.10)');
  });

  test('excluded wins over permitted, below and at the excluded name', () => {
    const c = ca({ dns: ['example.com'] }, { dns: ['bad.example.com'] });
    expect(verdict(c, [dns('good.example.com')])).toBe('ok');
    expect(verdict(c, [dns('bad.example.com')])).toMatch(/"bad\.example\.com" is in the excluded dNSName subtree bad\.example\.com/);
    expect(verdict(c, [dns('x.BAD.example.com')])).toMatch(/excluded dNSName subtree/);
    expect(verdict(c, [dns('notbad.example.com')])).toBe('ok');
  });

  test('a wildcard that can stand for an excluded name is refused; one that cannot is not', () => {
    const c = ca(undefined, { dns: ['bad.example.com', '.deep.example.com'] });
    expect(verdict(c, [dns('*.example.com')])).toMatch(/"\*\.example\.com" is in the excluded dNSName subtree bad\.example\.com/);
    expect(verdict(c, [dns('*.other.example.com')])).toBe('ok');
    // ".deep.example.com" excludes names below deep.example.com only: *.example.com cannot reach them.
    expect(verdict(ca(undefined, { dns: ['.deep.example.com'] }), [dns('*.example.com')])).toBe('ok');
    expect(verdict(c, [dns('*.deep.example.com')])).toMatch(/excluded dNSName subtree \.deep\.example\.com/);
    // A wildcard is inside a permitted subtree only if all its names are.
    expect(verdict(ca({ dns: ['a.example.com'] }), [dns('*.example.com')])).toMatch(/not within the permitted/);
  });

  test('other name forms are not restricted by dNSName subtrees', () => {
    expect(verdict(ca({ dns: ['example.com'] }), [dns('www.example.com'), ip('192.0.2.1'), email('a@other.test')])).toBe('ok');
  });
});

describe('iPAddress', () => {
  test('address and mask, each family on its own', () => {
    const c = ca({ ip: ['10.0.0.0/8', 'fd00::/8'] }, { ip: ['10.9.0.0/16'] });
    expect(verdict(c, [ip('10.1.2.3')])).toBe('ok');
    expect(verdict(c, [ip('11.1.2.3')])).toMatch(/iPAddress "11\.1\.2\.3" is not within the permitted iPAddress subtrees \(10\.0\.0\.0\/8, fd00::\/8\)/);
    expect(verdict(c, [ip('10.9.1.1')])).toMatch(/excluded iPAddress subtree 10\.9\.0\.0\/16/);
    expect(verdict(c, [ip('fd12::1')])).toBe('ok');
    expect(verdict(c, [ip('fe80::1')])).toMatch(/not within the permitted/);
  });

  test('a v4 constraint never matches a v6 address (IPv4-mapped included), nor the reverse', () => {
    expect(verdict(ca({ ip: ['10.0.0.0/8'] }), [ip('::ffff:10.0.0.1')])).toMatch(/not within the permitted/);
    expect(verdict(ca({ ip: ['::/0'] }), [ip('10.0.0.1')])).toMatch(/not within the permitted/);
    expect(verdict(ca(undefined, { ip: ['0.0.0.0/0'] }), [ip('2001:db8::1')])).toBe('ok');
  });
});

describe('rfc822Name', () => {
  test.each<[string, string, boolean]>([
    ['alice@example.com', 'alice@example.com', true],
    ['alice@EXAMPLE.com', 'alice@example.com', true],
    ['Alice@example.com', 'alice@example.com', false],
    ['bob@example.com', 'example.com', true],
    ['bob@mail.example.com', 'example.com', false],
    ['bob@mail.example.com', '.example.com', true],
    ['bob@example.com', '.example.com', false],
    ['bob@Mail.Example.com', '.example.COM', true],
  ])('%s within %s: %s', (address, base, want) => {
    expect(emailMatches(address, base)).toBe(want);
  });

  test('subject emailAddress attributes are checked as rfc822Name', () => {
    const atv = seq(oid(OID.emailAddress), Buffer.from([0x16, 13, ...Buffer.from('eve@evil.test')]));
    const name = seq(setOf(seq(oid(OID.CN), utf8('Eve'))), setOf(atv));
    const names = constrainedNames(name, [], true);
    expect(findNameConstraintViolation(names, [ca({ email: ['example.com'] })])?.detail).toBe(
      'rfc822Name "eve@evil.test" (subject emailAddress) is not within the permitted rfc822Name subtrees (example.com) of CA "CN=Test CA" (RFC 5280 §4.2.1.10)',
    );
  });
});

describe('uniformResourceIdentifier', () => {
  test.each<[string, string | null]>([
    ['https://Host.Example.com:8443/path?q#f', 'host.example.com'],
    ['https://user:pw@host.example.com/', 'host.example.com'],
    ['urn:dev:trellis:42', null],
    ['https://[2001:db8::1]/', null],
    ['https://192.0.2.1/', null],
  ])('host of %s is %s', (u, host) => {
    expect(uriHost(u)).toBe(host);
  });

  test('a host base is that host only; a leading dot every host below', () => {
    expect(verdict(ca({ uri: ['host.example.com'] }), [uri('https://host.example.com/x')])).toBe('ok');
    expect(verdict(ca({ uri: ['host.example.com'] }), [uri('https://a.host.example.com/x')])).toMatch(/not within the permitted uniformResourceIdentifier subtrees/);
    expect(verdict(ca({ uri: ['.example.com'] }), [uri('https://a.example.com/x')])).toBe('ok');
    expect(verdict(ca({ uri: ['.example.com'] }), [uri('https://example.com/x')])).toMatch(/not within the permitted/);
    expect(verdict(ca(undefined, { uri: ['.evil.test'] }), [uri('https://x.evil.test/')])).toMatch(/excluded uniformResourceIdentifier subtree \.evil\.test/);
  });

  test('a URI without a host is refused when URIs are constrained, and ignored otherwise', () => {
    expect(verdict(ca({ uri: ['.example.com'] }), [uri('urn:dev:trellis:42')])).toMatch(/has no host name to check against the uniformResourceIdentifier constraints/);
    expect(verdict(ca({ dns: ['example.com'] }), [uri('urn:dev:trellis:42')])).toBe('ok');
  });
});

describe('directoryName', () => {
  // NameConstraints with directoryName subtrees, built by hand ([4] is EXPLICIT).
  const dirCa = (permitted: Buffer[], excluded: Buffer[] = []): ConstrainingCa => {
    const parts = [];
    if (permitted.length) parts.push(ctx(0, true, ...permitted.map((n) => seq(ctx(4, true, n)))));
    if (excluded.length) parts.push(ctx(1, true, ...excluded.map((n) => seq(ctx(4, true, n)))));
    return { name: 'CN=Dir CA', constraints: decodeNameConstraints(seq(...parts)) };
  };

  test('the base RDNs must be the first RDNs of the subject (case and spacing ignored)', () => {
    const c = dirCa([encodeName({ C: 'DE', O: 'Example' })]);
    expect(verdict(c, [], { C: 'DE', O: 'example', CN: 'x' })).toBe('ok');
    expect(verdict(c, [], { C: 'DE', O: '  EXAMPLE ', CN: 'x' })).toBe('ok');
    expect(verdict(c, [], { C: 'DE', O: 'Other', CN: 'x' })).toMatch(/directoryName "C=DE, O=Other, CN=x" \(subject\) is not within the permitted directoryName subtrees \(C=DE, O=Example\)/);
    expect(verdict(c, [], { O: 'Example', CN: 'x' })).toMatch(/not within the permitted directoryName/);
    // An empty subject is not constrained (§4.2.1.10: "when the certificate includes a non-empty subject field").
    expect(verdict(c, [dns('a.test')], {})).toBe('ok');
  });

  test('excluded directoryName subtrees', () => {
    const c = dirCa([], [encodeName({ O: 'Evil' })]);
    expect(verdict(c, [], { O: 'Evil', CN: 'x' })).toMatch(/excluded directoryName subtree O=Evil/);
    expect(verdict(c, [], { O: 'Good', CN: 'x' })).toBe('ok');
  });
});

describe('commonName that looks like a host name', () => {
  const c = ca({ dns: ['example.com'] });
  test('checked as a dNSName when an end-entity certificate has no dNSName SAN', () => {
    expect(verdict(c, [], { CN: 'www.other.test' })).toMatch(/dNSName "www\.other\.test" \(subject commonName\) is not within the permitted dNSName subtrees/);
    expect(verdict(c, [ip('192.0.2.1')], { CN: 'www.other.test' })).toMatch(/subject commonName/);
    expect(verdict(c, [], { CN: 'www.example.com' })).toBe('ok');
  });
  test('not checked when a dNSName SAN is present, or when it is no host name, or in a CA certificate', () => {
    expect(verdict(c, [dns('www.example.com')], { CN: 'www.other.test' })).toBe('ok');
    expect(verdict(c, [], { CN: 'Device 42' })).toBe('ok');
    expect(verdict(c, [], { CN: 'sensor' })).toBe('ok');
    expect(verdict(c, [], { CN: '-a.other.test' })).toBe('ok');
    expect(findNameConstraintViolation(leaf([], { CN: 'www.other.test' }, false), [c])).toBeNull();
  });
});

describe('decoding', () => {
  test('minimum or maximum in a subtree (RFC 5280: MUST NOT) refuses names of its form', () => {
    const withMax = seq(ctx(0, true, seq(Buffer.from([0x82, 11, ...Buffer.from('example.com')]), Buffer.from([0x81, 1, 2]))));
    const c: ConstrainingCa = { name: 'CN=Odd', constraints: decodeNameConstraints(withMax) };
    expect(verdict(c, [dns('www.example.com')])).toMatch(/cannot be checked against the dNSName constraint example\.com \(maximum present, which RFC 5280 forbids\)/);
    expect(verdict(c, [ip('192.0.2.1')])).toBe('ok');
  });
  test('every CA of the chain counts: the first refusal names its CA', () => {
    const issuing = ca({ dns: ['example.com'] });
    const root: ConstrainingCa = { ...ca(undefined, { dns: ['secret.example.com'] }), name: 'CN=Root' };
    expect(findNameConstraintViolation(leaf([dns('a.secret.example.com')]), [issuing, root])?.detail).toMatch(/excluded dNSName subtree secret\.example\.com of CA "CN=Root"/);
    expect(findNameConstraintViolation(leaf([dns('a.other.test')]), [issuing, root])?.ca).toBe('CN=Test CA');
  });
});

describe('OpenSSL agrees (the oracle)', () => {
  const tmp = tempDir('trellis-nc-unit-');
  afterAll(() => tmp.cleanup());
  const constraint = 'critical,permitted;DNS:example.com,permitted;IP:10.0.0.0/255.0.0.0,permitted;email:.example.com,permitted;URI:.example.com,excluded;DNS:bad.example.com,excluded;IP:10.9.0.0/255.255.0.0';
  let caReady: Promise<void> | undefined;
  const makeCa = () =>
    (caReady ??= openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('ca.key'), '-subj', '/CN=Oracle CA', '-days', '30',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', `nameConstraints=${constraint}`, '-out', tmp.file('ca.pem')).then(() => undefined));
  let n = 0;

  test.each<[string, string, string | null]>([
    ['/CN=www.example.com', 'DNS:www.example.com', null],
    ['/CN=x', 'DNS:www.other.test', 'www.other.test'],
    ['/CN=x', 'DNS:notexample.com', 'notexample.com'],
    ['/CN=x', 'DNS:bad.example.com', 'bad.example.com'],
    ['/CN=x', 'DNS:a.bad.example.com', 'a.bad.example.com'],
    ['/CN=x', 'IP:10.1.2.3', null],
    ['/CN=x', 'IP:10.9.2.3', '10.9.2.3'],
    ['/CN=x', 'IP:192.0.2.1', '192.0.2.1'],
    ['/CN=x', 'IP:2001:db8::1', '2001:db8::1'],
    ['/CN=x', 'email:a@mail.example.com', null],
    ['/CN=x', 'email:a@example.com', 'a@example.com'],
    ['/CN=x', 'URI:https://h.example.com/p', null],
    ['/CN=x', 'URI:https://example.com/p', 'https://example.com/p'],
    ['/CN=www.other.test', '', 'www.other.test'],
    ['/CN=www.example.com', '', null],
    ['/CN=www.other.test', 'IP:10.1.2.3', 'www.other.test'],
  ])('subject %s, SAN %s: refused name %s', async (subj, san, refused) => {
    await makeCa();
    const name = `leaf-${++n}`;
    const { csrPath } = await makeCsr(tmp.dir, name, subj);
    fs.writeFileSync(tmp.file(`${name}.cnf`), `basicConstraints=CA:FALSE\n${san ? `subjectAltName=${san}\n` : ''}`);
    await openssl('x509', '-req', '-in', csrPath, '-CA', tmp.file('ca.pem'), '-CAkey', tmp.file('ca.key'), '-set_serial', `0x7${n}1234567890abcdef`, '-days', '10', '-extfile', tmp.file(`${name}.cnf`), '-out', tmp.file(`${name}.pem`));
    const verified = await opensslRun(['verify', '-CAfile', tmp.file('ca.pem'), tmp.file(`${name}.pem`)]);
    const ours = findNameConstraintViolation(constrainedNamesOfCertificate(readCertificate(fs.readFileSync(tmp.file(`${name}.pem`)))), [
      { name: 'CN=Oracle CA', constraints: decodeNameConstraints(readCertificate(fs.readFileSync(tmp.file('ca.pem'))).extensions.find((e) => e.oid === OID.nameConstraints)!.valueDer) },
    ]);
    expect(verified.code === 0, verified.stdout + verified.stderr).toBe(refused === null);
    expect(ours?.name.value ?? null).toBe(refused);
  });
});
