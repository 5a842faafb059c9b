/** AlgorithmIdentifier (RFC 5280 §4.1.1.2) as certificates and CSRs carry it, read strictly. */
import { PkiError } from '../errors/pki-error.js';
import { checkDer, children, expectTag, readOid, Tag, whole, type Tlv } from './der.js';

/** AlgorithmIdentifier with its raw encoding (lints compare the inner and outer ones byte for byte). */
export interface AlgorithmId {
  oid: string;
  der: Buffer;
}

const malformed = (what: string) => new PkiError('malformed', `malformed DER: ${what}`);

/**
 * AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY DEFINED BY algorithm OPTIONAL }
 *
 * The parameters of the algorithms X.509 uses are NULL (RSA, RFC 4055 §5), a
 * named curve (RFC 5480 §2.1.1) or a SEQUENCE (RSA-PSS, explicit curves):
 * anything else, or a NULL with contents, is refused rather than carried
 * along unread. A SEQUENCE must be DER throughout (`checkDer`), not checked field by field.
 * Throws a `malformed` PkiError.
 */
export function readAlgorithmIdentifier(t: Tlv | undefined): AlgorithmId {
  const a = expectTag(t, Tag.SEQUENCE, 'AlgorithmIdentifier');
  const f = children(a);
  if (f.length < 1 || f.length > 2) throw malformed('AlgorithmIdentifier must have 1 or 2 fields');
  const params = f[1];
  if (params?.tag === Tag.NULL) {
    if (params.end !== params.start) throw malformed('NULL parameters with contents');
  } else if (params?.tag === Tag.OID) readOid(params);
  else if (params?.tag === Tag.SEQUENCE) checkDer(params);
  else if (params) throw malformed(`AlgorithmIdentifier parameters of tag 0x${params.tag.toString(16)}`);
  return { oid: readOid(f[0]!), der: whole(a) };
}
