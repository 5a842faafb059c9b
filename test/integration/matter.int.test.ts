/**
 * A Matter device attestation chain (PAA -> PAI -> DAC) from the example
 * profiles in ca-profiles/examples, made by Trellis's own ceremony and CA
 * code, checked with OpenSSL: chain, sizes, VID/PID attributes, critical
 * extensions, key identifiers, P-256 and ecdsa-with-SHA256 only. A DAC CSR
 * with a bad VID or PID is a 400 over the REST API.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { createIssuingCa, createRootCa } from '../../src/ca/ceremony.js';
import { UsageError } from '../../src/cli/args.js';
import { ceremonyDeps, initInstance } from '../../src/cmd/init-instance.js';
import { serve, type Serving } from '../../src/cmd/server.js';
import { unlockIssuers, keystoreFor, openInstance, profile, registrationAuthority, unlockCa, type Instance } from '../../src/cmd/instance.js';
import { configFile, readInstanceConfig } from '../../src/config/instance-config.js';
import { isPkiError, PkiError } from '../../src/errors/pki-error.js';
import { silentLogger } from '../../src/http/log.js';
import type { SoftwareKeystore } from '../../src/keys/software-keystore.js';
import { toPem } from '../../src/pki/pem.js';
import { defaultProfilesDir } from '../../src/profiles/load.js';
import type { RegistrationAuthority } from '../../src/ra/registration.js';
import { createToken } from '../../src/tokens/tokens.js';
import { openssl, tempDir } from '../helpers/openssl.js';
import { testPassphrase, testRootPassphrase } from '../helpers/test-pki.js';

const VID = '1.3.6.1.4.1.37244.2.1';
const PID = '1.3.6.1.4.1.37244.2.2';
const tmp = tempDir('trellis-matter-');
const dataDir = tmp.file('data');
const der: Record<'paa' | 'pai' | 'dac', Buffer> = {} as never;
let instance: Instance;
let online: SoftwareKeystore;
let offline: SoftwareKeystore;
let ra: RegistrationAuthority;

const pemFile = (name: string, d: Buffer) => {
  fs.writeFileSync(tmp.file(`${name}.pem`), toPem('CERTIFICATE', d));
  fs.writeFileSync(tmp.file(`${name}.der`), d);
  return tmp.file(`${name}.pem`);
};
/**
 * A P-256 CSR made by OpenSSL: -subj skips attribute types it has no name
 * for, so a config file names Matter's (FID, the firmware signing id, is one
 * the DAC profile does not declare).
 */
async function matterCsr(name: string, subj: string): Promise<string> {
  const cnf = tmp.file('matter-oids.cnf');
  fs.writeFileSync(cnf, `oid_section = oids\n[oids]\nmatterVID = ${VID}\nmatterPID = ${PID}\nmatterFID = 1.3.6.1.4.1.37244.1.1\n[req]\ndistinguished_name = dn\n[dn]\n`);
  await openssl('req', '-new', '-config', cnf, '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file(`${name}.key`), '-subj', subj, '-out', tmp.file(`${name}.csr`));
  return fs.readFileSync(tmp.file(`${name}.csr`), 'utf8');
}
const text = (name: string) => openssl('x509', '-in', tmp.file(`${name}.pem`), '-noout', '-text');
const asn1 = (name: string) => openssl('asn1parse', '-inform', 'DER', '-in', tmp.file(`${name}.der`));

beforeAll(async () => {
  await initInstance({ dataDir, baseUrl: 'http://pki.test:8080', passphrase: testPassphrase, rootPassphrase: testRootPassphrase, actor: 'test' });
  // The operator's steps: copy the examples into the profiles directory, map matter-dac to the PAI.
  const profilesDir = path.join(dataDir, readInstanceConfig(dataDir).profilesDir);
  for (const f of ['matter-paa.yaml', 'matter-pai.yaml', 'matter-dac.yaml']) fs.copyFileSync(path.join(defaultProfilesDir(), 'examples', f), path.join(profilesDir, f));
  fs.writeFileSync(configFile(dataDir), JSON.stringify({ ...readInstanceConfig(dataDir), profileIssuers: { 'matter-dac': 'pai' } }, null, 2));

  instance = await openInstance(dataDir);
  online = keystoreFor(instance, testPassphrase);
  offline = keystoreFor(instance, testRootPassphrase);
  const deps = ceremonyDeps(instance, online, 'test');
  const paa = await createRootCa({ ...deps, keystore: offline }, { id: 'paa', subject: { CN: 'Trellis Matter Test PAA', [VID]: 'FFF1' }, algorithm: 'ecdsa-p256', profile: profile(instance, 'matter-paa') });
  await instance.reloadCas();
  const pai = await createIssuingCa(deps, await unlockCa(instance, { online, offline }, 'paa'), {
    id: 'pai', subject: { CN: 'Trellis Matter Test PAI', [VID]: 'FFF1' }, algorithm: 'ecdsa-p256', profile: profile(instance, 'matter-pai'),
  });
  await instance.reloadCas();
  ra = registrationAuthority(instance, await unlockIssuers(instance, online));
  der.paa = paa.certDer;
  der.pai = pai.certDer;
  const csrPem = await matterCsr('dac', '/CN=Trellis Matter Test DAC 0001/matterVID=FFF1/matterPID=8000');
  const issued = await ra.requestCertificate({ profile: 'matter-dac', csr: csrPem, requestedVia: 'cli', requestedBy: 'test' });
  expect(issued.issuerId).toBe('pai');
  expect(issued.chainDer).toEqual([der.pai]);
  der.dac = issued.certDer;
  for (const [name, d] of Object.entries(der)) pemFile(name, d);
});
afterAll(async () => {
  online?.close();
  offline?.close();
  await instance?.close();
  tmp.cleanup();
});

describe('PAA -> PAI -> DAC from the example profiles', () => {
  test('the chain verifies with openssl verify -x509_strict', async () => {
    await expect(openssl('verify', '-x509_strict', '-CAfile', tmp.file('paa.pem'), tmp.file('pai.pem'))).resolves.toMatch(/pai\.pem: OK$/m);
    await expect(openssl('verify', '-x509_strict', '-CAfile', tmp.file('paa.pem'), '-untrusted', tmp.file('pai.pem'), tmp.file('dac.pem'))).resolves.toMatch(/dac\.pem: OK$/m);
  });

  test('every certificate is under 600 bytes of DER, P-256, signed with ecdsa-with-SHA256', async () => {
    for (const name of ['paa', 'pai', 'dac'] as const) {
      expect(der[name].length).toBeLessThan(600);
      const t = await text(name);
      expect(t.match(/Signature Algorithm: (\S+)/g)).toEqual(['Signature Algorithm: ecdsa-with-SHA256', 'Signature Algorithm: ecdsa-with-SHA256']);
      expect(t).toMatch(/ASN1 OID: prime256v1/);
      expect(t).toMatch(/NIST CURVE: P-256/);
    }
  });

  test('VID and PID are subject attributes 1.3.6.1.4.1.37244.2.1/2, UTF8Strings', async () => {
    const attributes = (dump: string) => [...dump.matchAll(/OBJECT\s+:(1\.3\.6\.1\.4\.1\.37244\.2\.[12])\n.*prim: (\S+)\s+:(.*)/g)].map((m) => [m[1], m[2], m[3]]);
    // issuer then subject
    expect(attributes(await asn1('dac'))).toEqual([[VID, 'UTF8STRING', 'FFF1'], [VID, 'UTF8STRING', 'FFF1'], [PID, 'UTF8STRING', '8000']]);
    expect(attributes(await asn1('pai'))).toEqual([[VID, 'UTF8STRING', 'FFF1'], [VID, 'UTF8STRING', 'FFF1']]);
    expect(await openssl('x509', '-in', tmp.file('dac.pem'), '-noout', '-subject', '-nameopt', 'oid,sep_comma_plus')).toMatch(/2\.5\.4\.3=Trellis Matter Test DAC 0001,1\.3\.6\.1\.4\.1\.37244\.2\.1=FFF1,1\.3\.6\.1\.4\.1\.37244\.2\.2=8000/);
  });

  test('basicConstraints and keyUsage critical; PAA pathlen 1, PAI pathlen 0, DAC CA false with digitalSignature only', async () => {
    const expected = {
      paa: [/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:1\n/, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/],
      pai: [/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/],
      dac: [/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/, /X509v3 Key Usage: critical\n\s+Digital Signature\n/],
    };
    for (const [name, [bc, ku]] of Object.entries(expected)) {
      const t = await text(name);
      expect(t).toMatch(bc!);
      expect(t).toMatch(ku!);
    }
  });

  test('SKID of 20 bytes everywhere, AKID on PAI and DAC naming the issuer; no SAN, EKU, CDP or AIA', async () => {
    const skid = async (name: string) => /X509v3 Subject Key Identifier: \n\s+([0-9A-F:]+)\n/.exec(await text(name))?.[1];
    const akid = async (name: string) => /X509v3 Authority Key Identifier: \n\s+(?:keyid:)?([0-9A-F:]+)\n/.exec(await text(name))?.[1];
    for (const name of ['paa', 'pai', 'dac']) expect((await skid(name))?.split(':')).toHaveLength(20);
    expect(await akid('pai')).toBe(await skid('paa'));
    expect(await akid('dac')).toBe(await skid('pai'));
    for (const name of ['paa', 'pai', 'dac']) {
      expect(await text(name)).not.toMatch(/Subject Alternative Name|Extended Key Usage|CRL Distribution Points|Authority Information Access/);
    }
  });

  test('the ceremony refuses a PAA key the profile does not allow, and a PAI with a bad VID', async () => {
    const deps = ceremonyDeps(instance, online, 'test');
    const refused = async (p: Promise<unknown>) => p.then(() => { throw new Error('accepted'); }, (err: unknown) => err as Error);
    const p384 = await refused(createRootCa({ ...deps, keystore: offline }, { id: 'paa-384', subject: { CN: 'PAA' }, algorithm: 'ecdsa-p384', profile: profile(instance, 'matter-paa') }));
    expect(isPkiError(p384, 'badPublicKey')).toBe(true);
    expect(p384.message).toMatch(/profile "matter-paa" does not allow ecdsa-p384 keys/);
    const badVid = await refused(createIssuingCa(deps, await unlockCa(instance, { online, offline }, 'paa'), { id: 'pai-bad', subject: { CN: 'PAI', [VID]: 'fff1' }, algorithm: 'ecdsa-p256', profile: profile(instance, 'matter-pai') }));
    expect(isPkiError(badVid, 'badCSR')).toBe(true);
    expect(badVid.message).toMatch(/subject matterVID \(1\.3\.6\.1\.4\.1\.37244\.2\.1\) "fff1" does not match/);
    expect(instance.store.cas).toBeDefined();
    expect((await instance.store.cas.findById('pai-bad')) ?? null).toBeNull();
  });
});

describe('POST /api/v1/certificates with the matter-dac profile', () => {
  let server: Serving;
  let token: string;
  beforeAll(async () => {
    token = (await createToken(instance.store.tokens, 'issuer', 'factory')).secret;
    server = await serve({ dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
  });
  afterAll(async () => {
    await server?.close();
  });
  let n = 0;
  const post = async (subj: string) => {
    const csrPem = await matterCsr(`api-${++n}`, subj);
    return fetch(`${server.url}/api/v1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ profile: 'matter-dac', csr: csrPem }) });
  };

  test('201 for a good VID and PID, issued by the PAI', async () => {
    const res = await post('/CN=DAC 2/matterVID=FFF1/matterPID=8001');
    expect(res.status).toBe(201);
    const chain = await res.text();
    fs.writeFileSync(tmp.file('api-chain.pem'), chain);
    await expect(openssl('verify', '-x509_strict', '-CAfile', tmp.file('paa.pem'), '-untrusted', tmp.file('api-chain.pem'), tmp.file('api-chain.pem'))).resolves.toMatch(/: OK$/m);
  });

  test.each([
    ['a lower-case VID', '/CN=DAC/matterVID=fff1/matterPID=8000', /subject matterVID \(1\.3\.6\.1\.4\.1\.37244\.2\.1\) "fff1" does not match \^\[0-9A-F\]\{4\}\$/],
    ['a VID of five characters', '/CN=DAC/matterVID=FFF12/matterPID=8000', /subject matterVID .* "FFF12" does not match/],
    ['a PID that is not hex', '/CN=DAC/matterVID=FFF1/matterPID=80G0', /subject matterPID .* "80G0" does not match/],
    ['no PID', '/CN=DAC/matterVID=FFF1', /requires subject matterPID \(1\.3\.6\.1\.4\.1\.37244\.2\.2\)/],
    ['an attribute the profile does not declare', '/CN=DAC/matterVID=FFF1/matterPID=8000/matterFID=0000000000000001', /subject attribute 1\.3\.6\.1\.4\.1\.37244\.1\.1 is not supported/],
  ])('400 badCSR for %s', async (_, subj, detail) => {
    const res = await post(subj);
    expect(res.status).toBe(400);
    const problem = (await res.json()) as { type: string; detail: string };
    expect(problem.type).toMatch(/badCSR$/);
    expect(problem.detail).toMatch(detail);
  });
});

describe('trellis ceremony root|issuing --profile --subject-attr (the CLI command, run in this process)', () => {
  /**
   * Runs `trellis ceremony ARGS` on the test instance as main.ts does: the
   * exit code (2 for a UsageError, 1 for another PkiError) and the error's
   * message, or the --json result.
   */
  async function ceremony(args: string[]): Promise<{ code: number; message?: string; result?: Record<string, unknown> }> {
    const { run } = await import('../../src/cmd/commands/ceremony.js');
    const passphraseFile = tmp.file('online.pass');
    const rootPassphraseFile = tmp.file('root.pass');
    fs.writeFileSync(passphraseFile, testPassphrase, { mode: 0o600 });
    fs.writeFileSync(rootPassphraseFile, testRootPassphrase, { mode: 0o600 });
    let stdout = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
    try {
      const code = await run([...args, '--json', '--data', dataDir, '--passphrase-file', passphraseFile, '--root-passphrase-file', rootPassphraseFile]);
      return { code, result: JSON.parse(stdout) as Record<string, unknown> };
    } catch (err) {
      if (err instanceof PkiError) return { code: err instanceof UsageError ? 2 : 1, message: err.message };
      throw err;
    } finally {
      write.mockRestore();
    }
  }
  /** Keys generated for CA `ca` (ceremony.*.key_generated audit events). */
  const keysMadeFor = async (ca: string) =>
    (await instance.store.audit.range(1, 1_000_000)).filter((e) => e.type.endsWith('.key_generated') && (JSON.parse(e.data) as { ca?: string }).ca === ca).length;
  const caPem = async (id: string) => {
    const rec = await instance.store.cas.findById(id);
    expect(rec, `CA ${id}`).toBeTruthy();
    return pemFile(id, rec!.certDer);
  };

  test('an operator makes a PAA and a PAI with VID and PID from the CLI; openssl verifies the chain and shows the attributes', async () => {
    const paa = await ceremony(['root', '--id', 'paa-cli', '--cn', 'Matter PAA', '--algorithm', 'ecdsa-p256', '--profile', 'matter-paa', '--subject-attr', 'matterVID=FFF1']);
    expect(paa, paa.message).toMatchObject({ code: 0, result: { id: 'paa-cli', role: 'root' } });
    const pai = await ceremony(['issuing', '--id', 'pai-cli', '--parent', 'paa-cli', '--cn', 'Matter PAI', '--profile', 'matter-pai', '--subject-attr', 'matterVID=FFF1', '--subject-attr', 'matterPID=8000']);
    expect(pai, pai.message).toMatchObject({ code: 0, result: { id: 'pai-cli', role: 'issuing' } });
    const paaPem = await caPem('paa-cli');
    const paiPem = await caPem('pai-cli');
    await expect(openssl('verify', '-x509_strict', '-CAfile', paaPem, paiPem)).resolves.toMatch(/pai-cli\.pem: OK$/m);
    const paaText = await openssl('x509', '-in', paaPem, '-noout', '-text');
    const paiText = await openssl('x509', '-in', paiPem, '-noout', '-text');
    expect(paaText).toMatch(/Subject: CN ?= ?Matter PAA, 1\.3\.6\.1\.4\.1\.37244\.2\.1 ?= ?FFF1\n/);
    expect(paiText).toMatch(/Issuer: CN ?= ?Matter PAA, 1\.3\.6\.1\.4\.1\.37244\.2\.1 ?= ?FFF1\n/);
    expect(paiText).toMatch(/Subject: CN ?= ?Matter PAI, 1\.3\.6\.1\.4\.1\.37244\.2\.1 ?= ?FFF1, 1\.3\.6\.1\.4\.1\.37244\.2\.2 ?= ?8000\n/);
    // The profiles, not root-ca / issuing-ca, made them: Matter's path lengths, P-256, no AIA or CDP, under 600 bytes.
    expect(paaText).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:1\n/);
    expect(paiText).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    for (const t of [paaText, paiText]) {
      expect(t).toMatch(/NIST CURVE: P-256/);
      expect(t).not.toMatch(/Authority Information Access|CRL Distribution Points/);
    }
    expect((await instance.store.cas.findById('pai-cli'))!.certDer.length).toBeLessThan(600);
    expect([await keysMadeFor('paa-cli'), await keysMadeFor('pai-cli')]).toEqual([1, 1]);
    // As for every issuing CA, the ceremony gives the PAI its delegated OCSP responder (serve would make one at start otherwise).
    expect(await instance.store.certificates.latestHeld('pai-cli', 'ocsp-responder')).toMatchObject({ status: 'valid' });
  });

  test.each([
    ['an attribute the profile does not declare', ['--subject-attr', 'matterVID=FFF1', '--subject-attr', 'matterFID=0001'], 2, /--subject-attr matterFID: not an attribute of profile "matter-pai" \(it declares matterVID \(1\.3\.6\.1\.4\.1\.37244\.2\.1\), matterPID/],
    ['a VID off the pattern', ['--subject-attr', 'matterVID=fff1'], 1, /subject matterVID \(1\.3\.6\.1\.4\.1\.37244\.2\.1\) "fff1" does not match \^\[0-9A-F\]\{4\}\$ \(profile "matter-pai"\)/],
    ['no VID, which the PAI profile requires', ['--subject-attr', 'matterPID=8000'], 1, /profile "matter-pai" requires subject matterVID/],
    ['a malformed pair', ['--subject-attr', 'matterVID'], 2, /--subject-attr "matterVID": expected NAME=VALUE/],
  ])('rejects: %s, before any key is made', async (_name, attrs, code, message) => {
    const r = await ceremony(['issuing', '--id', 'pai-refused', '--parent', 'paa', '--cn', 'Matter PAI', '--profile', 'matter-pai', ...attrs]);
    expect(r.code).toBe(code);
    expect(r.message).toMatch(message);
    expect(await instance.store.cas.findById('pai-refused')).toBeNull();
    expect(await keysMadeFor('pai-refused')).toBe(0);
  });

  test.each([
    ['root', 'a root with an issuing-CA profile', ['--profile', 'matter-pai'], /--profile matter-pai: a root needs a self-signed CA profile \(signer: self\), this one has signer: root/],
    ['root', 'a leaf profile', ['--profile', 'matter-dac'], /--profile matter-dac: not a CA profile/],
    ['issuing', 'an issuing CA with a root profile', ['--parent', 'paa', '--profile', 'matter-paa'], /--profile matter-paa: a self-signed \(root\) profile; use it with trellis ceremony root/],
    ['issuing', 'a root-signed profile under an issuing parent', ['--parent', 'pai', '--profile', 'matter-pai', '--subject-attr', 'matterVID=FFF1'], /signed by a root CA \(signer: root\), but the parent "pai" is a issuing CA/],
    ['issuing', '--profile with --import-cert', ['--import-cert', 'x.pem', '--root-cert', 'r.pem', '--profile', 'matter-pai'], /--import-cert takes the subject .*: --profile and --subject-attr do not apply/],
  ])('rejects: ceremony %s with %s (usage error)', async (kind, _name, args, message) => {
    const r = await ceremony([kind, '--id', 'ca-refused', '--cn', 'Refused', '--algorithm', 'ecdsa-p256', ...args]);
    expect(r.code).toBe(2);
    expect(r.message).toMatch(message);
    expect(await instance.store.cas.findById('ca-refused')).toBeNull();
    expect(await keysMadeFor('ca-refused')).toBe(0);
  });

  test('an unknown profile is named', async () => {
    const r = await ceremony(['root', '--id', 'ca-refused', '--cn', 'Refused', '--profile', 'no-such-profile']);
    expect(r).toMatchObject({ code: 1, message: expect.stringMatching(/profile "no-such-profile" is missing from the profiles directory/) });
  });
});
