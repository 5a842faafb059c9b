/**
 * The client chain a device presents, checked against the gateway's own roots
 * (RFC 5280 §6.1, the parts a device gateway needs): signatures, validity now,
 * basicConstraints and keyCertSign on every CA, name constraints, clientAuth
 * on the leaf. Nothing here trusts what the TLS stack may have checked.
 */
import { findExtension, parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { decodeBasicConstraints, decodeExtKeyUsage, decodeKeyUsage, decodeSubjectAltName } from '../pki/extensions.js';
import { constrainedNamesOfCertificate, constrainingCaOf, findNameConstraintViolation, type ConstrainingCa } from '../pki/name-constraints.js';
import { OID } from '../pki/oids.js';
import { loadSpki } from '../pki/public-key.js';
import { verifySignature } from '../pki/signature.js';

/** Most certificates between the leaf and a root (leaf and root included). */
export const maxChainLength = 8;

/** Extensions this verifier understands; any other critical one makes a certificate unusable (RFC 5280 §4.2). */
const understood = new Set<string>([
  OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectAltName, OID.nameConstraints,
  OID.subjectKeyIdentifier, OID.authorityKeyIdentifier, OID.cRLDistributionPoints, OID.authorityInfoAccess, OID.certificatePolicies,
]);

/** A refusal with one of the stable reason strings. */
export class Refusal extends Error {
  constructor(readonly reason: string, detail?: string) {
    super(detail ?? reason);
    this.name = 'Refusal';
  }
}

/** True when `child` names `parent` as its issuer and `parent`'s key signed it. */
export function signedBy(child: ParsedCertificate, parent: ParsedCertificate): boolean {
  if (!child.issuerDer.equals(parent.subjectDer)) return false;
  if (!child.signatureAlgorithm.der.equals(child.tbsSignature.der)) return false;
  try {
    return verifySignature(child.signatureAlgorithm.oid, loadSpki(parent.spkiDer).publicKey, child.tbsDer, child.signature, 'certificate');
  } catch {
    // An algorithm or key we do not accept cannot have signed anything we trust.
    return false;
  }
}

const sameCert = (a: ParsedCertificate, b: ParsedCertificate): boolean => a.der.equals(b.der);

function checkUnderstood(c: ParsedCertificate): void {
  for (const e of c.extensions) if (e.critical && !understood.has(e.oid)) throw new Refusal('untrusted chain', `unknown critical extension ${e.oid}`);
}

function checkTime(c: ParsedCertificate, now: Date): void {
  if (now < c.notBefore) throw new Refusal('not yet valid');
  if (now > c.notAfter) throw new Refusal('expired');
}

function checkCa(c: ParsedCertificate, below: number): void {
  const bc = findExtension(c, OID.basicConstraints);
  const d = bc ? decodeBasicConstraints(bc.valueDer) : null;
  if (!d?.ca) throw new Refusal('untrusted chain', 'an issuer is not a CA (basicConstraints)');
  // `below` = CA certificates between this one and the leaf (RFC 5280 §4.2.1.9).
  if (d.pathLen !== undefined && below > d.pathLen) throw new Refusal('untrusted chain', 'path length constraint exceeded');
  const ku = findExtension(c, OID.keyUsage);
  if (ku && !decodeKeyUsage(ku.valueDer).has('keyCertSign')) throw new Refusal('untrusted chain', 'an issuer may not sign certificates (keyUsage)');
}

export interface VerifiedChain {
  /** Leaf first, the trusted root last. */
  path: ParsedCertificate[];
  leaf: ParsedCertificate;
  issuer: ParsedCertificate;
}

/**
 * Builds a path from the leaf through the presented certificates to one of
 * `roots` and checks it. Throws Refusal ('untrusted chain', 'expired',
 * 'not yet valid', 'not a client certificate').
 */
export function verifyChain(presentedDer: readonly Buffer[], roots: readonly ParsedCertificate[], now: Date): VerifiedChain {
  if (presentedDer.length === 0) throw new Refusal('no client certificate');
  let presented: ParsedCertificate[];
  try {
    presented = presentedDer.map((d) => parseCertificate(d));
  } catch (err) {
    throw new Refusal('bad certificate', err instanceof Error ? err.message : String(err));
  }
  const leaf = presented[0]!;
  const others = presented.slice(1);
  const path: ParsedCertificate[] = [leaf];
  let current = leaf;
  for (;;) {
    // The configured roots are tried first, so a copy of a root sent by the client is never needed.
    const root = roots.find((r) => signedBy(current, r));
    if (root) {
      path.push(root);
      break;
    }
    const next = others.find((c) => !path.some((p) => sameCert(p, c)) && signedBy(current, c));
    if (!next || path.length >= maxChainLength) throw new Refusal('untrusted chain', next ? 'chain too long' : 'no path to a trusted root');
    path.push(next);
    current = next;
  }
  for (const c of path.slice(0, -1)) {
    checkUnderstood(c);
    checkTime(c, now);
  }
  // The anchor's validity bounds what it may vouch for (as OpenSSL does).
  checkTime(path[path.length - 1]!, now);
  const cas = path.slice(1, -1);
  cas.forEach((c, i) => checkCa(c, i));
  const leafBc = findExtension(leaf, OID.basicConstraints);
  if (leafBc && decodeBasicConstraints(leafBc.valueDer).ca) throw new Refusal('not a client certificate', 'the leaf is a CA certificate');
  const eku = findExtension(leaf, OID.extKeyUsage);
  if (!eku || !decodeExtKeyUsage(eku.valueDer).includes(OID.clientAuth)) throw new Refusal('not a client certificate', 'the leaf has no clientAuth extended key usage');
  const ku = findExtension(leaf, OID.keyUsage);
  if (ku && !decodeKeyUsage(ku.valueDer).has('digitalSignature')) throw new Refusal('not a client certificate', 'the leaf key may not sign (keyUsage)');
  // Name constraints of every CA in the path, the anchor's included.
  const constraining = path.slice(1).map(constrainingCaOf).filter((c): c is ConstrainingCa => c !== null);
  if (constraining.length) {
    const v = findNameConstraintViolation(constrainedNamesOfCertificate(leaf), constraining);
    if (v) throw new Refusal('untrusted chain', `name constraints: ${v.detail}`);
  }
  return { path, leaf, issuer: path[1]! };
}

/** The prefix of the URI SAN Trellis writes into device certificates (ca-profiles/device.yaml). */
export const deviceUriPrefix = 'urn:dev:trellis:';

/** The device id of a leaf: its subject serialNumber, else the urn:dev:trellis: URI SAN (percent-decoded). */
export function deviceIdOf(leaf: ParsedCertificate): string | null {
  const sn = leaf.subject.find((e) => e.type === 'serialNumber')?.value;
  if (sn) return sn;
  const san = findExtension(leaf, OID.subjectAltName);
  if (!san) return null;
  for (const g of decodeSubjectAltName(san.valueDer)) {
    if (g.type === 'uri' && g.value.startsWith(deviceUriPrefix)) {
      try {
        const id = decodeURIComponent(g.value.slice(deviceUriPrefix.length));
        if (id) return id;
      } catch {
        return null;
      }
    }
  }
  return null;
}
