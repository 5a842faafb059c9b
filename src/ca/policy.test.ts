import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { serverProfile } from '../../test/helpers/profiles.js';
import { isPkiError, type PkiError } from '../errors/pki-error.js';
import { problems } from '../errors/problem.js';
import { parseCertificate } from '../pki/certificate.js';
import { ctx, oid, seq } from '../pki/der.js';
import { authorityKeyIdentifierExtension, basicConstraintsExtension, keyUsageExtension, nameConstraintsExtension, subjectKeyIdentifierExtension } from '../pki/extensions.js';
import type { GeneralName } from '../pki/general-name.js';
import { decodeNameConstraints } from '../pki/name-constraints.js';
import { encodeName } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import { issuerChainOf } from './chain.js';
import { keyIdentifierOf } from './issuer.js';
import { checkNameConstraints } from './policy.js';
import { encodeCertificate, encodeTbs } from './tbs.js';

const alg = seq(oid(OID.ecdsaWithSHA256));

/** A CA certificate signed by `parent` (or itself), with optional nameConstraints. */
function caCert(cn: string, parent: { cn: string; key: ReturnType<typeof generateKeyPairSync> } | null, nc?: Buffer) {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spkiDer = key.publicKey.export({ type: 'spki', format: 'der' });
  const signer = parent ?? { cn, key };
  const signerSpki = signer.key.publicKey.export({ type: 'spki', format: 'der' });
  const tbs = encodeTbs({
    serial: Buffer.from('4a1b2c3d4e5f60718293a4b5c6d7e8f9', 'hex'), signatureAlgorithm: alg, issuerName: encodeName({ CN: signer.cn }),
    notBefore: new Date('2025-01-01T00:00:00Z'), notAfter: new Date('2035-01-01T00:00:00Z'), subjectName: encodeName({ CN: cn }), spkiDer,
    extensions: [
      basicConstraintsExtension(true), keyUsageExtension(['keyCertSign', 'cRLSign']), subjectKeyIdentifierExtension(keyIdentifierOf(spkiDer.subarray(spkiDer.length - 65))),
      authorityKeyIdentifierExtension(keyIdentifierOf(signerSpki.subarray(signerSpki.length - 65))), ...(nc ? [nc] : []),
    ],
  });
  return { cn, key, cert: parseCertificate(encodeCertificate(tbs, alg, sign('sha256', tbs, signer.key.privateKey))) };
}

function refused(fn: () => void): PkiError {
  try {
    fn();
  } catch (err) {
    if (isPkiError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

const dns = (value: string): GeneralName => ({ type: 'dns', value });

describe('name constraints in the CA core', () => {
  const root = caCert('Root', null, nameConstraintsExtension(undefined, { dns: ['secret.example.test'] }));
  const other = caCert('Other Root', null);
  const issuing = caCert('Issuing', root, nameConstraintsExtension({ dns: ['example.test'] }));
  const chain = issuerChainOf({ cert: issuing.cert, chainDer: [issuing.cert.der] }, [other.cert.der, root.cert.der]);

  test('the chain above an issuer is found among the known CA certificates, up to its root', () => {
    expect(chain.above.map((c) => c.subjectDer)).toEqual([root.cert.subjectDer]);
    expect(chain.constraining.map((c) => c.name)).toEqual(['CN=Issuing', 'CN=Root']);
    // Without the roots, only what Issuer.chainDer holds.
    expect(issuerChainOf({ cert: issuing.cert, chainDer: [issuing.cert.der] }).constraining.map((c) => c.name)).toEqual(['CN=Issuing']);
  });

  test('a name inside passes', () => {
    expect(() => checkNameConstraints(chain.constraining, { profile: serverProfile, subject: { CN: 'a.example.test' }, sans: [dns('a.example.test')] })).not.toThrow();
  });

  test.each<[string, GeneralName[], Record<string, string>, string, RegExp]>([
    ['a SAN outside the issuing CA\'s permitted subtree', [dns('a.other.test')], {}, 'rejectedIdentifier', /^dNSName "a\.other\.test" is not within the permitted dNSName subtrees \(example\.test\) of CA "CN=Issuing"/],
    ['a SAN excluded by the root', [dns('x.secret.example.test')], {}, 'rejectedIdentifier', /^dNSName "x\.secret\.example\.test" is in the excluded dNSName subtree secret\.example\.test of CA "CN=Root"/],
    ['a host-like CN without a dNSName SAN', [{ type: 'ip', value: '192.0.2.1' }], { CN: 'a.other.test' }, 'rejectedIdentifier', /\(subject commonName\) is not within the permitted/],
  ])('rejects: %s (%s, 400)', (_what, sans, subject, type, detail) => {
    const err = refused(() => checkNameConstraints(chain.constraining, { profile: serverProfile, subject, sans }));
    expect(err.type).toBe(type);
    expect(problems[err.type].status).toBe(400);
    expect(err.message).toMatch(detail);
  });

  test('rejects: a subject outside a directoryName constraint (badCSR, 400)', () => {
    // NameConstraints ::= SEQUENCE { permittedSubtrees [0] { GeneralSubtree { directoryName [4] EXPLICIT O=Example } } }
    const withDir = { name: 'CN=Dir CA', constraints: decodeNameConstraints(seq(ctx(0, true, seq(ctx(4, true, encodeName({ O: 'Example' })))))) };
    const err = refused(() => checkNameConstraints([withDir], { profile: serverProfile, subject: { O: 'Evil', CN: 'x' }, sans: [dns('a.example.test')] }));
    expect(err.type).toBe('badCSR');
    expect(err.message).toMatch(/directoryName "O=Evil, CN=x" \(subject\) is not within the permitted directoryName subtrees \(O=Example\) of CA "CN=Dir CA"/);
  });
});
