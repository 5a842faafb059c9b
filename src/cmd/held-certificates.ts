/** Certificates whose keys Trellis itself holds: the delegated OCSP responder and the HTTPS server. */
import { generateKeyPairSync } from 'node:crypto';
import { isIP } from 'node:net';
import type { IssuedCertificate } from '../ca/authority.js';
import type { Issuer } from '../ca/issuer.js';
import { currentResponder as currentHeldResponder, issueHeldKey, type ResponderMaterial } from '../ca/held-keys.js';
import type { Keystore } from '../keys/signing-key.js';
import { describeKey } from '../pki/public-key.js';
import { profile, type Instance } from './instance.js';

const heldKeyDeps = (instance: Instance) => ({ authority: instance.authority, certificates: instance.store.certificates, clock: instance.clock });

/** RFC 6960 §4.2.2.2: a delegated responder certificate per issuing CA, issued by that CA. */
export async function issueOcspResponder(instance: Instance, keystore: Keystore, issuer: Issuer, actor: string): Promise<IssuedCertificate> {
  return issueHeldKey(heldKeyDeps(instance), keystore, issuer, { profile: profile(instance, 'ocsp-responder'), subject: { CN: `${issuer.id} OCSP Responder` }, actor });
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
  const issued = await instance.authority.issue(issuer.id, {
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

/** The current delegated responder of an issuing CA (rotated when a third of its life is left; ca/held-keys.ts). */
export function currentResponder(instance: Instance, keystore: Keystore, issuer: Issuer, actor: string): Promise<ResponderMaterial> {
  return currentHeldResponder(heldKeyDeps(instance), keystore, issuer, profile(instance, 'ocsp-responder'), actor);
}
