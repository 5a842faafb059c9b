import type { AttributeOid } from '../pki/name.js';

/**
 * A certificate profile as loaded from `ca-profiles/<name>.yaml` and checked by
 * `profiles/schema.ts`. Durations are in seconds after parsing ("90d" → 7776000).
 */
export interface Profile {
  /** File name without `.yaml`; the name requests and ACME directories use. */
  name: string;
  description: string;
  /** Which CA role may sign with this profile: 'root' (self-signed), 'root-signed' (issuing CA under a root), 'issuing'. */
  signer: 'self' | 'root' | 'issuing';
  keys: {
    /** RSA modulus bits allowed (inclusive). Absent: RSA refused. */
    rsa?: { minBits: number; maxBits: number };
    /** Named curves allowed. Absent or empty: ECDSA refused. */
    ecdsa?: ('P-256' | 'P-384')[];
    ed25519?: boolean;
  };
  validity: {
    /** Validity when the request does not ask for one. */
    defaultSeconds: number;
    /** Upper bound; requests asking for longer are clipped (not refused). */
    maxSeconds: number;
    /** notBefore = now - backdateSeconds (clock skew on devices). */
    backdateSeconds: number;
  };
  keyUsage: KeyUsageName[];
  /** Absent or empty: no EKU extension. */
  extendedKeyUsage?: ExtendedKeyUsageName[];
  basicConstraints: { ca: boolean; pathLen?: number };
  /**
   * Subject attributes by key: a standard short name (CN, O, …) or, for an
   * attribute the profile declares in `attributes`, its dotted OID (the YAML
   * names it by its declared name; the loader turns that into the OID).
   */
  subject: {
    /** Attributes always set by the CA, in RDN order; the request cannot change them. */
    fixed: Partial<Record<SubjectKey, string>>;
    /** Attributes copied from the CSR subject when present. Anything else in the CSR subject is refused. */
    allowed: SubjectKey[];
    /** Attributes that must be present in the CSR subject. */
    required: SubjectKey[];
    /** Attribute types beyond the standard ones, named by OID (e.g. Matter's VID and PID). The loader always sets it; absent = none. */
    attributes?: SubjectAttributeDefinition[];
  };
  san: {
    required: boolean;
    maxNames: number;
    /** Absent key: that SAN type is refused. Patterns are anchored JS regular expressions; CIDRs for ip. */
    dns?: { patterns: string[]; allowWildcard: boolean };
    ip?: { cidrs: string[] };
    uri?: { patterns: string[] };
    email?: { patterns: string[] };
  };
  /** Device identity: taken from the CSR subject (first present attribute of `from`), written to subject serialNumber and a URI SAN. */
  deviceId?: {
    from: ('serialNumber' | 'CN')[];
    /** Must match for the id to be accepted. */
    pattern: string;
    /** e.g. "urn:dev:ops:trellis-{id}" */
    uriTemplate: string;
  };
  /** CA profiles only: RFC 5280 §4.2.1.10 name constraints (always critical). */
  nameConstraints?: {
    permitted?: NameConstraintSet;
    excluded?: NameConstraintSet;
  };
  /** Certificate policy OIDs (RFC 5280 §4.2.1.4). */
  policies: string[];
  /** Which issuer-derived URLs go into the certificate. */
  urls: { ocsp: boolean; caIssuers: boolean; crl: boolean };
  /** id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), for OCSP responder certificates. */
  ocspNoCheck: boolean;
  /**
   * Channels a client may enroll through (YAML `enrollment`; absent = none).
   * The operator's `trellis issue` needs no listing; CA and OCSP-signer
   * profiles list none, ever (profiles/enrollment.ts).
   */
  enrollment: EnrollmentChannel[];
}

export interface NameConstraintSet {
  dns?: string[];
  /** CIDRs. */
  ip?: string[];
  email?: string[];
  uri?: string[];
}

/** Enrollment channels a profile can open: the REST API, ACME, and EST (served later; the value is accepted now). */
export const enrollmentChannels = ['api', 'acme', 'est'] as const;
export type EnrollmentChannel = (typeof enrollmentChannels)[number];

export const subjectAttributes = ['C', 'ST', 'L', 'O', 'OU', 'CN', 'serialNumber'] as const;
export type SubjectAttribute = (typeof subjectAttributes)[number];
/** A subject attribute as profiles and requests key it: a standard short name, or the dotted OID of a declared attribute. */
export type SubjectKey = SubjectAttribute | AttributeOid;

/** An attribute type a profile declares by OID (YAML `subject.attributes`). */
export interface SubjectAttributeDefinition {
  /** The name the profile's fixed/allowed/required use, and messages show. */
  name: string;
  oid: AttributeOid;
  /** Anchored regular expression every value must match (from the CSR or fixed). */
  pattern: string;
  /** How the value is encoded: UTF8String (RFC 5280 §4.1.2.6), the only choice today. */
  encoding: 'utf8';
}

/** "matterVID (1.3.6.1.4.1.37244.2.1)" for a declared attribute, the short name otherwise: for messages. */
export function subjectKeyLabel(profile: Pick<Profile, 'subject'>, key: string): string {
  const def = profile.subject.attributes?.find((a) => a.oid === key);
  return def ? `${def.name} (${def.oid})` : key;
}

export const keyUsageNames = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsageName = (typeof keyUsageNames)[number];

export const extendedKeyUsageNames = ['serverAuth', 'clientAuth', 'codeSigning', 'emailProtection', 'timeStamping', 'OCSPSigning'] as const;
export type ExtendedKeyUsageName = (typeof extendedKeyUsageNames)[number];
