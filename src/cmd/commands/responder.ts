/** Certificates whose keys Trellis itself holds: the delegated OCSP responder and the HTTPS server. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { IssuedCertificate } from '../../ca/authority.js';
import type { Issuer } from '../../ca/issuer.js';
import type { Keystore, SigningKey } from '../../keys/signing-key.js';
import type { GeneralName } from '../../pki/general-name.js';
import { describeKey } from '../../pki/public-key.js';
import { profile, type Instance } from '../instance.js';

async function issueHeld(instance: Instance, keystore: Keystore, issuer: Issuer, profileName: string, subject: Record<string, string>, sans: GeneralName[], actor: string): Promise<{ issued: IssuedCertificate; key: SigningKey }> {
  const key = await keystore.generate('ecdsa-p256', { id: `${profileName}-${issuer.id}-${randomBytes(6).toString('hex')}` });
  const issued = await instance.authority.issue(issuer, {
    profile: profile(instance, profileName),
    subject,
    sans,
    spkiDer: key.spkiDer,
    keyInfo: describeKey(key.publicKey),
    requestedVia: 'ceremony',
    requestedBy: actor,
    keyId: key.keyId,
  });
  return { issued, key };
}

/** RFC 6960 §4.2.2.2: a delegated responder certificate per issuing CA, issued by that CA. */
export async function issueOcspResponder(instance: Instance, keystore: Keystore, issuer: Issuer, actor: string): Promise<IssuedCertificate> {
  const { issued } = await issueHeld(instance, keystore, issuer, 'ocsp-responder', { CN: `${issuer.id} OCSP Responder` }, [], actor);
  return issued;
}

/**
 * The HTTPS certificate of `trellis serve --tls` for the base URL's host. Its
 * key is generated in memory at each start and never stored: a restart or a
 * renewal simply gets a new key and certificate.
 */
export async function issueServerCertificate(instance: Instance, issuer: Issuer, host: string, validitySeconds: number, actor: string): Promise<{ issued: IssuedCertificate; keyPem: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const bare = host.replace(/^\[|\]$/g, '');
  const ip = isIP(bare) !== 0;
  const issued = await instance.authority.issue(issuer, {
    profile: profile(instance, 'server'),
    subject: ip ? {} : { CN: bare },
    sans: [{ type: ip ? 'ip' : 'dns', value: bare }],
    spkiDer: publicKey.export({ type: 'spki', format: 'der' }),
    keyInfo: describeKey(publicKey),
    validitySeconds,
    requestedVia: 'ceremony',
    requestedBy: actor,
  });
  return { issued, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** What an OCSP responder needs per issuing CA: the CA, its delegated responder certificate and that certificate's key. */
export interface ResponderMaterial {
  issuer: Issuer;
  responderCertDer: Buffer;
  responderKey: SigningKey;
  notAfter: Date;
}

/**
 * The current responder certificate of an issuing CA, issued anew when there
 * is none or when less than a third of its life is left (RFC 6960 §4.2.2.2.1:
 * with ocsp-nocheck it cannot be revoked, so it stays short-lived and rotates).
 */
export async function currentResponder(instance: Instance, keystore: Keystore, issuer: Issuer, actor: string): Promise<ResponderMaterial> {
  const now = instance.clock.now().getTime();
  let rec = await instance.store.certificates.latestHeld(issuer.id, 'ocsp-responder');
  const fresh = (r: NonNullable<typeof rec>) => r.notAfter.getTime() - now > (r.notAfter.getTime() - r.notBefore.getTime()) / 3;
  if (!rec || !rec.der || !fresh(rec)) {
    await issueOcspResponder(instance, keystore, issuer, actor);
    rec = await instance.store.certificates.latestHeld(issuer.id, 'ocsp-responder');
  }
  if (!rec?.der || !rec.keyId) throw new Error(`no OCSP responder certificate for ${issuer.id}`);
  return { issuer, responderCertDer: rec.der, responderKey: await keystore.load(rec.keyId), notAfter: rec.notAfter };
}
