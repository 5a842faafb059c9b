/** CRLs for the verifier (RFC 5280 §5): parsed with the DER reader, signature checked against the issuer, freshness checked. */
import type { ParsedCertificate } from '../pki/certificate.js';
import { children, expectTag, readOid, readOne, readTime, readUnsigned, Tag, value, whole, type Tlv } from '../pki/der.js';
import { parseExtensions } from '../pki/csr.js';
import { OID } from '../pki/oids.js';
import { derFromPemOrDer } from '../pki/pem.js';
import { loadSpki } from '../pki/public-key.js';
import { verifySignature } from '../pki/signature.js';
import { skewMs, UnusableAnswer } from './ocsp.js';

/** A CRL whose signature and times were checked: revoked serials (lower-case hex) with their reason codes. */
export interface CheckedCrl {
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: Map<string, number | null>;
}

const isTime = (t: Tlv | undefined): boolean => t?.tag === Tag.UTCTime || t?.tag === Tag.GeneralizedTime;

/** Reads and checks a CRL (DER or PEM) issued by `issuer`. Delta CRLs and CRLs without nextUpdate are not used. */
export function checkCrl(input: Buffer, issuer: ParsedCertificate, now: Date): CheckedCrl {
  try {
    const der = derFromPemOrDer(input, ['X509 CRL'], 'CRL');
    const [tbsT, algT, sigT, ...extra] = children(readOne(der, Tag.SEQUENCE));
    if (!tbsT || !algT || !sigT || extra.length) throw new UnusableAnswer('CertificateList must have 3 fields');
    const f = children(expectTag(tbsT, Tag.SEQUENCE, 'TBSCertList'));
    let i = f[0]?.tag === Tag.INTEGER ? 1 : 0;
    const innerAlg = whole(expectTag(f[i++], Tag.SEQUENCE, 'signature'));
    const issuerT = expectTag(f[i++], Tag.SEQUENCE, 'issuer');
    const thisUpdate = readTime(f[i++]!);
    const nextUpdate = isTime(f[i]) ? readTime(f[i++]!) : null;
    const revokedT = f[i]?.tag === Tag.SEQUENCE ? f[i++] : undefined;
    const extT = f[i]?.tag === 0xa0 ? f[i++] : undefined;

    if (!whole(issuerT).equals(issuer.subjectDer)) throw new UnusableAnswer('CRL issuer is not the certificate issuer');
    if (!innerAlg.equals(whole(algT))) throw new UnusableAnswer('CRL signature algorithms differ');
    const algOid = readOid(children(algT)[0]!);
    const sig = value(expectTag(sigT, Tag.BIT_STRING, 'signature')).subarray(1);
    if (!verifySignature(algOid, loadSpki(issuer.spkiDer).publicKey, whole(tbsT), sig, 'CRL')) throw new UnusableAnswer('CRL signature does not verify');

    const exts = extT ? parseExtensions(children(extT)[0]!) : [];
    if (exts.some((e) => e.oid === OID.deltaCRLIndicator)) throw new UnusableAnswer('a delta CRL is not complete');
    if (!nextUpdate) throw new UnusableAnswer('CRL without nextUpdate');
    if (thisUpdate.getTime() > now.getTime() + skewMs) throw new UnusableAnswer('CRL thisUpdate is in the future');
    if (nextUpdate.getTime() < now.getTime()) throw new UnusableAnswer('CRL is stale (nextUpdate passed)');

    const revoked = new Map<string, number | null>();
    for (const entry of revokedT ? children(revokedT) : []) {
      const [serialT, , entryExtT] = children(expectTag(entry, Tag.SEQUENCE, 'revokedCertificate'));
      const reasonExt = entryExtT ? parseExtensions(entryExtT).find((e) => e.oid === OID.reasonCode) : undefined;
      const code = reasonExt ? value(readOne(reasonExt.valueDer, Tag.ENUMERATED)) : null;
      revoked.set(readUnsigned(serialT!).toString('hex'), code && code.length === 1 ? code[0]! : null);
    }
    return { thisUpdate, nextUpdate, revoked };
  } catch (err) {
    if (err instanceof UnusableAnswer) throw err;
    throw new UnusableAnswer(`CRL cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
