/** The verifier's parsing pieces against OpenSSL: its OCSP request, `openssl ocsp` responses, `openssl ca -gencrl` CRLs, chains and device ids. */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { pemBlocks } from '../pki/pem.js';
import { children, readOne, value } from '../pki/der.js';
import { parseOcspRequest } from '../ocsp/request.js';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { buildOcspRequest, checkCrl, checkOcspResponse, createDeviceVerifier, deviceIdOf, Refusal, UnusableAnswer, verifyChain } from './index.js';

const tmp = tempDir('trellis-verify-');
const f = tmp.file;
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const certOf = (file: string): ParsedCertificate => parseCertificate(pemBlocks(fs.readFileSync(file, 'utf8'))[0]!.der);
const day = 86_400_000;

/** A certificate signed by `ca` with the given extensions (openssl x509 -req). */
async function issue(name: string, subj: string, ca: string, ext: string, serial: string): Promise<ParsedCertificate> {
  fs.writeFileSync(f(`${name}.ext`), ext);
  await openssl('req', '-new', ...ec, '-keyout', f(`${name}.key`), '-subj', subj, '-out', f(`${name}.csr`));
  await openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.pem`), '-CAkey', f(`${ca}.key`), '-set_serial', serial, '-days', '30', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
  return certOf(f(`${name}.pem`));
}

let root: ParsedCertificate;
let other: ParsedCertificate;
let leaf: ParsedCertificate;
let uriLeaf: ParsedCertificate;
let server: ParsedCertificate;
let notCa: ParsedCertificate;
let underNotCa: ParsedCertificate;
let inter: ParsedCertificate;
let underInter: ParsedCertificate;

beforeAll(async () => {
  await openssl('req', '-x509', ...ec, '-keyout', f('root.key'), '-subj', '/CN=Unit Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', f('root.pem'));
  await openssl('req', '-x509', ...ec, '-keyout', f('other.key'), '-subj', '/CN=Other Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-out', f('other.pem'));
  root = certOf(f('root.pem'));
  other = certOf(f('other.pem'));
  const client = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
  leaf = await issue('leaf', '/serialNumber=dev-1', 'root', client, '0x8a01');
  uriLeaf = await issue('uri', '/CN=ignored', 'root', `${client}subjectAltName=URI:urn:dev:trellis:dev%3A2\n`, '0x0b02');
  server = await issue('server', '/serialNumber=dev-3', 'root', 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n', '0x0b03');
  notCa = await issue('notca', '/CN=Not A CA', 'root', 'basicConstraints=critical,CA:FALSE\n', '0x0b04');
  underNotCa = await issue('under', '/serialNumber=dev-5', 'notca', client, '0x0b05');
  inter = await issue('inter', '/CN=Unit Issuing', 'root', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n', '0x0b08');
  underInter = await issue('leaf2', '/serialNumber=dev-8', 'inter', client, '0x0b09');
  await issue('resp', '/CN=Responder', 'root', 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=OCSPSigning\n', '0x0b06');
  await issue('noeku', '/CN=No EKU Responder', 'root', 'basicConstraints=critical,CA:FALSE\n', '0x0b07');
  fs.writeFileSync(f('crlnumber'), '01\n');
  fs.writeFileSync(f('ca.cnf'), `[ca]\ndefault_ca = d\n[d]\ndatabase = ${f('index.txt')}\ncrlnumber = ${f('crlnumber')}\ndefault_md = sha256\ndefault_crl_days = 1\n`);
});
afterAll(() => tmp.cleanup());

/** openssl's index.txt: the leaf valid, or revoked for keyCompromise. */
function index(revoked: boolean): string {
  const line = revoked ? `R\t491231235959Z\t240101000000Z,keyCompromise\t8A01\tunknown\t/serialNumber=dev-1\n` : `V\t491231235959Z\t\t8A01\tunknown\t/serialNumber=dev-1\n`;
  fs.writeFileSync(f('index.txt'), line);
  return f('index.txt');
}

async function ocspResponse(revoked: boolean, signer = 'resp'): Promise<Buffer> {
  fs.writeFileSync(f('req.der'), buildOcspRequest(leaf, root));
  await openssl('ocsp', '-index', index(revoked), '-CA', f('root.pem'), '-rsigner', f(`${signer}.pem`), '-rkey', f(`${signer}.key`), '-reqin', f('req.der'), '-respout', f('resp.der'), '-ndays', '1');
  return fs.readFileSync(f('resp.der'));
}

describe('OCSP', () => {
  test('the request is one SHA-1 CertID for the leaf, read by our parser and by openssl', async () => {
    const der = buildOcspRequest(leaf, root);
    const req = parseOcspRequest(der);
    expect(req.certIds).toHaveLength(1);
    expect(req.certIds[0]).toMatchObject({ hash: 'sha1', serialHex: '8a01' });
    fs.writeFileSync(f('req-text.der'), der);
    expect(await openssl('ocsp', '-reqin', f('req-text.der'), '-req_text')).toMatch(/Serial Number: 8A01/);
  });

  test('good and revoked (with reason) from openssl ocsp with a delegated responder', async () => {
    expect(checkOcspResponse(await ocspResponse(false), leaf, root, new Date()).status).toEqual({ status: 'good' });
    const r = checkOcspResponse(await ocspResponse(true), leaf, root, new Date());
    expect(r.status).toEqual({ status: 'revoked', reason: 1 });
    expect(r.nextUpdate!.getTime()).toBeGreaterThan(Date.now());
  });

  test('signed by the issuer itself', async () => {
    expect(checkOcspResponse(await ocspResponse(false, 'root'), leaf, root, new Date()).status).toEqual({ status: 'good' });
  });

  test.each([
    ['a responder without id-kp-OCSPSigning', async () => checkOcspResponse(await ocspResponse(false, 'noeku'), leaf, root, new Date()), /OCSPSigning/],
    ['a flipped signature byte', async () => {
      const der = await ocspResponse(false);
      // OCSPResponse → responseBytes → response OCTET STRING → BasicOCSPResponse → signature BIT STRING
      const octets = children(children(children(readOne(der))[1]!)[0]!)[1]!;
      const sig = children(readOne(value(octets)))[2]!;
      octets.buf[octets.start + sig.end - 1]! ^= 1;
      return checkOcspResponse(der, leaf, root, new Date());
    }, /signature does not verify/],
    ['an answer for another certificate', async () => checkOcspResponse(await ocspResponse(false), uriLeaf, root, new Date()), /does not answer/],
    ['an answer after its nextUpdate', async () => checkOcspResponse(await ocspResponse(false), leaf, root, new Date(Date.now() + 2 * day)), /stale/],
    ['another issuer', async () => checkOcspResponse(await ocspResponse(false), leaf, other, new Date()), /./],
    ['garbage', async () => checkOcspResponse(Buffer.from('not ocsp'), leaf, root, new Date()), /cannot be read/],
    ['an error status', async () => checkOcspResponse(Buffer.from('30030a0106', 'hex'), leaf, root, new Date()), /responseStatus 6/],
  ])('unusable: %s', async (_n, run, msg) => {
    await expect(run()).rejects.toThrow(UnusableAnswer);
    await expect(run()).rejects.toThrow(msg);
  });
});

describe('CRL', () => {
  async function crl(revoked: boolean): Promise<Buffer> {
    index(revoked);
    await openssl('ca', '-gencrl', '-config', f('ca.cnf'), '-keyfile', f('root.key'), '-cert', f('root.pem'), '-out', f('crl.pem'));
    return fs.readFileSync(f('crl.pem'));
  }

  test('revoked serials with reasons, PEM or DER', async () => {
    const pem = await crl(true);
    expect(checkCrl(pem, root, new Date()).revoked).toEqual(new Map([['8a01', 1]]));
    expect(checkCrl(pemBlocks(pem.toString())[0]!.der, root, new Date()).revoked.get('8a01')).toBe(1);
    expect(checkCrl(await crl(false), root, new Date()).revoked.size).toBe(0);
  });

  test('refused: another issuer, a broken signature, past nextUpdate', async () => {
    const der = pemBlocks((await crl(true)).toString())[0]!.der;
    expect(() => checkCrl(der, other, new Date())).toThrow(/issuer/);
    const bad = Buffer.from(der);
    bad[bad.length - 10]! ^= 1;
    expect(() => checkCrl(bad, root, new Date())).toThrow(UnusableAnswer);
    expect(() => checkCrl(der, root, new Date(Date.now() + 2 * day))).toThrow(/stale/);
  });
});

describe('chain and device id', () => {
  const refusal = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      if (err instanceof Refusal) return err.reason;
      throw err;
    }
    return 'accepted';
  };

  test('a leaf issued by a root verifies; the issuer is the root', () => {
    const c = verifyChain([leaf.der], [root], new Date());
    expect(c.issuer.der.equals(root.der)).toBe(true);
  });

  test('through an intermediate the client sends, or with the intermediate as the anchor; without it, untrusted', () => {
    expect(verifyChain([underInter.der, inter.der], [root], new Date()).path.map((c) => c.serialHex)).toEqual(['0b09', '0b08', root.serialHex]);
    expect(verifyChain([underInter.der], [inter], new Date()).issuer.der.equals(inter.der)).toBe(true);
    expect(refusal(() => verifyChain([underInter.der], [root], new Date()))).toBe('untrusted chain');
  });

  test.each([
    ['another root', () => verifyChain([leaf.der], [other], new Date()), 'untrusted chain'],
    ['after notAfter', () => verifyChain([leaf.der], [root], new Date(Date.now() + 40 * day)), 'expired'],
    ['before notBefore', () => verifyChain([leaf.der], [root], new Date(Date.now() - 2 * day)), 'not yet valid'],
    ['no clientAuth', () => verifyChain([server.der], [root], new Date()), 'not a client certificate'],
    ['an issuer that is not a CA', () => verifyChain([underNotCa.der, notCa.der], [root], new Date()), 'untrusted chain'],
    ['nothing', () => verifyChain([], [root], new Date()), 'no client certificate'],
  ])('refused: %s', (_n, fn, reason) => {
    expect(refusal(fn)).toBe(reason);
  });

  test('device id: subject serialNumber, else the urn:dev:trellis: URI (percent-decoded)', () => {
    expect(deviceIdOf(leaf)).toBe('dev-1');
    expect(deviceIdOf(uriLeaf)).toBe('dev:2');
    expect(deviceIdOf(notCa)).toBeNull();
  });

  test('a certificate without AIA or CDP: status unavailable, refused failing closed', async () => {
    expect(await createDeviceVerifier({ roots: [fs.readFileSync(f('root.pem'), 'utf8')] }).verifyChain([leaf.der])).toEqual({ ok: false, reason: 'status unavailable' });
    expect(await createDeviceVerifier({ roots: [root.der], failClosed: false }).verifyChain([leaf.der])).toEqual({ ok: true, deviceId: 'dev-1', serial: '8a01', reason: 'status unavailable' });
  });
});
