/**
 * The outer layer of the responder: parses the request, finds the one CA it
 * names among those this node serves, and refuses the rest with the
 * protocol's own answer (malformedRequest, unauthorized) before any lookup.
 * Holds the per-CA state every layer below uses.
 */
import { createHash } from 'node:crypto';
import { children, readOid, readOne, Tag } from '../pki/der.js';
import { findExtension, parseCertificate } from '../pki/certificate.js';
import { OID } from '../pki/oids.js';
import { hashOids, issuerHashes, MalformedOcspRequest, parseOcspRequest, type CertId, type CertIdHash, type OcspRequest } from './request.js';
import { errorResponse } from './response.js';
import type { OcspResult, OcspSource, ResponderCa, ServedCa } from './source.js';

const hashes: readonly CertIdHash[] = ['sha1', 'sha256'];

/** Parses requests and hands each to `next` with the CA it names; see the module comment. */
export class RequestFilter {
  private readonly byHashes = new Map<string, ServedCa>();
  private readonly byId = new Map<string, ServedCa>();

  constructor(private readonly next: OcspSource) {}

  /**
   * Adds a CA, or replaces its responder after a renewal.
   * Throws when the responder certificate was not issued by the CA or lacks id-kp-OCSPSigning.
   */
  setCa(ca: ResponderCa): void {
    const cert = parseCertificate(ca.signer.certDer);
    // RFC 6960 §4.2.2.2: the CA itself may sign (a CA whose key may no longer certify a new responder, ca/held-keys.ts).
    const caItself = cert.subjectDer.equals(ca.subjectDer) && cert.subjectPublicKey.equals(ca.subjectPublicKey);
    if (!caItself && !cert.issuerDer.equals(ca.subjectDer)) throw new RangeError(`the OCSP responder certificate of ${ca.id} was not issued by that CA (RFC 6960 §4.2.2.2)`);
    const eku = findExtension(cert, OID.extKeyUsage);
    // Only a delegated responder needs id-kp-OCSPSigning.
    if (!caItself && (!eku || !children(readOne(eku.valueDer, Tag.SEQUENCE)).some((t) => readOid(t) === OID.OCSPSigning))) throw new RangeError(`the OCSP responder certificate of ${ca.id} lacks id-kp-OCSPSigning`);
    const byHash = { sha1: issuerHashes('sha1', ca.subjectDer, ca.subjectPublicKey), sha256: issuerHashes('sha256', ca.subjectDer, ca.subjectPublicKey) };
    const state: ServedCa = {
      ...ca,
      hashes: byHash,
      signerNotAfter: cert.notAfter,
      // The ResponderID from the responder certificate itself, not from the signer that writes it.
      lint: { responderKeyHash: createHash('sha1').update(cert.subjectPublicKey).digest(), issuerHashes: { [hashOids.sha1]: byHash.sha1, [hashOids.sha256]: byHash.sha256 } },
    };
    for (const h of hashes) this.byHashes.set(`${h}:${state.hashes[h].issuerNameHash.toString('hex')}:${state.hashes[h].issuerKeyHash.toString('hex')}`, state);
    this.byId.set(ca.id, state);
  }

  /** The served CA with this id, if any. */
  ca(id: string): ServedCa | undefined {
    return this.byId.get(id);
  }

  /**
   * Answers a request body: malformedRequest when it does not parse,
   * unauthorized when it names no CA served here, else what `next` answers.
   * Throws (or rejects) on any other failure.
   */
  answer(requestDer: Buffer): Promise<OcspResult> {
    let req: OcspRequest;
    try {
      req = parseOcspRequest(requestDer);
    } catch (err) {
      if (err instanceof MalformedOcspRequest) return Promise.resolve({ der: errorResponse('malformedRequest'), cache: null });
      throw err;
    }
    const ca = this.caFor(req.certIds);
    // RFC 6960 §2.3: we are not the responder for this issuer. One response has one signer, so every CertID needs the same CA.
    if (!ca) return Promise.resolve({ der: errorResponse('unauthorized'), cache: null });
    return this.next.answer(req, ca);
  }

  /** What `answer` would answer when the layer below holds it in memory already; undefined otherwise, a request that does not parse included. */
  cached(requestDer: Buffer): OcspResult | undefined {
    if (!this.next.cached) return undefined;
    let req: OcspRequest;
    try {
      req = parseOcspRequest(requestDer);
    } catch (err) {
      if (err instanceof MalformedOcspRequest) return undefined;
      throw err;
    }
    const ca = this.caFor(req.certIds);
    return ca ? this.next.cached(req, ca) : undefined;
  }

  private caFor(certIds: CertId[]): ServedCa | undefined {
    let ca: ServedCa | undefined;
    for (const c of certIds) {
      const x = this.byHashes.get(`${c.hash}:${c.issuerNameHash.toString('hex')}:${c.issuerKeyHash.toString('hex')}`);
      if (!x || (ca && x !== ca)) return undefined;
      ca = x;
    }
    return ca;
  }
}
