/** A pre-signed OCSP response (RFC 5019 §4) for one certificate. */
export interface StoredOcspResponse {
  issuerId: string;
  serialHex: string;
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** Pre-signed responses. Implemented in `store/`. */
export interface OcspResponseRepository {
  get(issuerId: string, serialHex: string): Promise<StoredOcspResponse | null>;
  /** Inserts or replaces the response of a certificate (many at once, one transaction). */
  putMany(responses: StoredOcspResponse[]): Promise<void>;
  /** Responses whose nextUpdate is before `before` (to refresh), oldest first. */
  expiring(before: Date, limit: number): Promise<{ issuerId: string; serialHex: string }[]>;
  delete(issuerId: string, serialHex: string): Promise<void>;
}
