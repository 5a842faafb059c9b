/**
 * The CA certificates above an issuer, up to its root, for the checks that
 * look at the whole chain (name constraints, RFC 5280 §4.2.1.10 and §6.1.4 (g)).
 */
import { findExtension, parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { decodeAuthorityKeyIdentifier, decodeSubjectKeyIdentifier } from '../pki/extensions.js';
import { constrainingCaOf, type ConstrainingCa } from '../pki/name-constraints.js';
import { OID } from '../pki/oids.js';
import type { Issuer } from './issuer.js';

/** An issuer's chain, parsed once. */
export interface IssuerChain {
  /** The CA certificates above the issuer (its parent first, the root last when known). */
  above: ParsedCertificate[];
  /** The issuer and the CAs above it that carry name constraints, issuer first. */
  constraining: ConstrainingCa[];
}

/** Chains longer than this are not followed (a loop in bad data). */
const maxDepth = 8;

const selfIssued = (c: ParsedCertificate) => c.issuerDer.equals(c.subjectDer);

function keyIdOf(c: ParsedCertificate, oid: string): Buffer | null {
  const ext = findExtension(c, oid);
  if (!ext) return null;
  return oid === OID.authorityKeyIdentifier ? decodeAuthorityKeyIdentifier(ext.valueDer) : decodeSubjectKeyIdentifier(ext.valueDer);
}

/** True when `parent` can have issued `child`: its subject is the child's issuer and, when both say, its SKI is the child's AKI. */
function issued(parent: ParsedCertificate, child: ParsedCertificate): boolean {
  if (!parent.subjectDer.equals(child.issuerDer)) return false;
  const aki = keyIdOf(child, OID.authorityKeyIdentifier);
  const ski = keyIdOf(parent, OID.subjectKeyIdentifier);
  return !aki || !ski || aki.equals(ski);
}

/**
 * Walks from the issuer's certificate up through `issuer.chainDer` (which
 * stops below the root) and `known` (every CA certificate of the instance,
 * roots included) to a self-issued certificate.
 */
export function issuerChainOf(issuer: Pick<Issuer, 'cert' | 'chainDer'>, known: readonly Buffer[] = []): IssuerChain {
  const pool = [...issuer.chainDer.slice(1), ...known].map((der) => parseCertificate(der));
  const above: ParsedCertificate[] = [];
  for (let cur = issuer.cert; !selfIssued(cur) && above.length < maxDepth; ) {
    const parent = pool.find((p) => !p.der.equals(cur.der) && issued(p, cur));
    if (!parent) break;
    above.push(parent);
    cur = parent;
  }
  const constraining = [issuer.cert, ...above].map(constrainingCaOf).filter((c): c is ConstrainingCa => c !== null);
  return { above, constraining };
}
