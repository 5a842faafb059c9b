/**
 * Keys Trellis holds beside its CA keys, certified by one of its CAs: the
 * delegated OCSP responder of each issuing CA (RFC 6960 §4.2.2.2) and the
 * audit signer (certified by the root). They are generated in a keystore and
 * opened here, inside the CA module: the rest of Trellis gets a sign function
 * that goes through the CA's key-state check, never the key.
 */
import { randomBytes } from 'node:crypto';
import type { Keystore } from '../keys/signing-key.js';
import type { GeneralName } from '../pki/general-name.js';
import { describeKey } from '../pki/public-key.js';
import type { Profile } from '../profiles/types.js';
import type { CertificateAuthority, IssuedCertificate, OcspResponderSigner } from './authority.js';
import { keyOf, type Issuer } from './issuer.js';
import { permits } from './key-state.js';
import type { CertificateRecord, CertificateRepository, RequestedVia } from './ports.js';

export interface HeldKeyDeps {
  authority: CertificateAuthority;
  certificates: Pick<CertificateRepository, 'latestHeld'>;
  clock: { now(): Date };
}

/**
 * Generates a P-256 key in `keystore` and has `issuer` certify it with
 * `profile`; the certificate row carries the key's id (latestHeld finds it).
 */
export async function issueHeldKey(
  deps: Pick<HeldKeyDeps, 'authority'>,
  keystore: Keystore,
  issuer: Issuer,
  req: { profile: Profile; subject: Record<string, string>; sans?: GeneralName[]; requestedVia?: RequestedVia; actor: string },
): Promise<IssuedCertificate> {
  const key = await keystore.generate('ecdsa-p256', { id: `${req.profile.name}-${issuer.id}-${randomBytes(6).toString('hex')}` });
  return deps.authority.issue(issuer.id, {
    profile: req.profile,
    subject: req.subject,
    sans: req.sans ?? [],
    spkiDer: key.spkiDer,
    keyInfo: describeKey(key.publicKey),
    requestedVia: req.requestedVia ?? 'ceremony',
    requestedBy: req.actor,
    keyId: key.keyId,
  });
}

/** A sign function over the held key of a certificate row (its keyId), opened from `keystore`. */
export async function heldKeySigner(keystore: Keystore, rec: Pick<CertificateRecord, 'keyId' | 'serialHex'>): Promise<(data: Buffer) => Promise<Buffer>> {
  if (!rec.keyId) throw new Error(`certificate ${rec.serialHex} names no held key`);
  const key = await keystore.load(rec.keyId);
  return (data) => key.sign(data);
}

/** How a delegated responder signs: its certificate, ResponderID key hash, algorithm, and a sign through the CA (state, lint). */
export type ResponderSigner = OcspResponderSigner;

/** What an OCSP responder needs per issuing CA: the CA, its delegated responder certificate and a signer for it. */
export interface ResponderMaterial {
  issuer: Issuer;
  responderCertDer: Buffer;
  signer: ResponderSigner;
  notAfter: Date;
}

/**
 * The current responder certificate of an issuing CA, issued anew when there
 * is none or when less than a third of its life is left (RFC 6960 §4.2.2.2.1:
 * with ocsp-nocheck it cannot be revoked, so it stays short-lived and rotates).
 * Its signer answers only while the CA's key state permits OCSP.
 */
export async function currentResponder(deps: HeldKeyDeps, keystore: Keystore, issuer: Issuer, profile: Profile, actor: string): Promise<ResponderMaterial> {
  const now = deps.clock.now().getTime();
  let rec = await deps.certificates.latestHeld(issuer.id, profile.name);
  const fresh = (r: NonNullable<typeof rec>) => r.notAfter.getTime() - now > (r.notAfter.getTime() - r.notBefore.getTime()) / 3;
  if (!rec || !rec.der || !fresh(rec)) {
    // A CA whose key may not certify (pre-activation before a rotation's takeover, deactivated after it) gets no
    // new responder: its last one answers while it is valid, then the CA itself (RFC 6960 §4.2.2.2; the key's state still decides).
    if (!permits(await deps.authority.keyStates.stateOf(issuer.id), 'certificate')) {
      if (rec?.der && rec.keyId && rec.notAfter.getTime() > now) return responderMaterial(deps, keystore, issuer, rec.der, rec.keyId, rec.notAfter);
      return { issuer, responderCertDer: issuer.cert.der, signer: deps.authority.ocspSigner(issuer.id, issuer.cert.der, keyOf(issuer)), notAfter: issuer.cert.notAfter };
    }
    await issueHeldKey(deps, keystore, issuer, { profile, subject: { CN: `${issuer.id} OCSP Responder` }, actor });
    rec = await deps.certificates.latestHeld(issuer.id, profile.name);
  }
  if (!rec?.der || !rec.keyId) throw new Error(`no OCSP responder certificate for ${issuer.id}`);
  return responderMaterial(deps, keystore, issuer, rec.der, rec.keyId, rec.notAfter);
}

async function responderMaterial(deps: HeldKeyDeps, keystore: Keystore, issuer: Issuer, certDer: Buffer, keyId: string, notAfter: Date): Promise<ResponderMaterial> {
  const key = await keystore.load(keyId);
  return { issuer, responderCertDer: certDer, signer: deps.authority.ocspSigner(issuer.id, certDer, key), notAfter };
}
