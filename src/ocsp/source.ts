/**
 * The layers of the OCSP responder, stacked as sources that wrap one another
 * (the shape of Boulder's ocsp/responder): the request filter (filter.ts)
 * checks a request and finds the CA it names, the cache (cache.ts) answers
 * from pre-signed responses, and the live source (live.ts) looks up status
 * and signs. Each passes what it does not answer to the next.
 */
import { createHash } from 'node:crypto';
import type { OcspExpectations } from '../lint/ocsp.js';
import type { CertIdHash, OcspRequest } from './request.js';
import type { ResponderSigner } from './response.js';

/** An issuing CA this responder answers for, with its delegated responder. */
export interface ResponderCa {
  id: string;
  /** The issuing CA's subject Name DER and subjectPublicKey bits, for the CertID hashes. */
  subjectDer: Buffer;
  subjectPublicKey: Buffer;
  signer: ResponderSigner;
}

/** A CA as the filter hands it on: checked by `setCa`, with what every layer below needs computed once. */
export interface ServedCa extends ResponderCa {
  hashes: Record<CertIdHash, { issuerNameHash: Buffer; issuerKeyHash: Buffer }>;
  /** The responder certificate's notAfter: no response outlives it. */
  signerNotAfter: Date;
  /** The CA-derived part of what the lint checks every response of this CA against (src/lint/ocsp.ts). */
  lint: Pick<OcspExpectations, 'responderKeyHash' | 'issuerHashes'>;
}

/** RFC 5019 §6 caching facts of a cacheable response, for the HTTP layer. */
export interface CacheInfo {
  thisUpdate: Date;
  nextUpdate: Date;
  /** Strong ETag (quoted) of the response DER. */
  etag: string;
}

export interface OcspResult {
  der: Buffer;
  /** Set for a pre-signed (single CertID, no nonce, successful) response; null when it must not be cached. */
  cache: CacheInfo | null;
}

/** A layer below the filter: answers a request the filter accepted for `ca`, or passes it to the next layer. Throws on failure. */
export interface OcspSource {
  answer(req: OcspRequest, ca: ServedCa): Promise<OcspResult>;
  /** What `answer` would answer when it is held in memory already (no lookup, no signature); else undefined. */
  cached?(req: OcspRequest, ca: ServedCa): OcspResult | undefined;
}

/** A signed response for one certificate (one CertID, no nonce), as the cache holds it. */
export interface PresignedResponse {
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Served until here (ms): half of the validity, so the replacement exists well before nextUpdate (RFC 5019 §6.1). */
  staleAt: number;
  etag: string;
  hash: CertIdHash;
}

/**
 * A long-lived copy outside Node's 8 KiB allocation pool: a small Buffer made
 * by Buffer.concat is a slice of a shared slab, and holding it in the LRU
 * would keep the whole slab alive (measured with 50,000 entries: 391 MiB of
 * ArrayBuffers instead of 34 MiB, RSS 535 MiB instead of 195 MiB).
 */
function own(b: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

const etagOf = (der: Buffer): string => `"${createHash('sha256').update(der).digest('base64url').slice(0, 27)}"`;

/** A PresignedResponse over its own copy of `der`, with its half-life and ETag. */
export function presignedOf(der: Buffer, thisUpdate: Date, nextUpdate: Date, hash: CertIdHash): PresignedResponse {
  return { der: own(der), thisUpdate, nextUpdate, staleAt: (thisUpdate.getTime() + nextUpdate.getTime()) / 2, etag: etagOf(der), hash };
}
