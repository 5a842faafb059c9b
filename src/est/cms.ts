/**
 * The DER bodies EST answers with (RFC 7030), built with pkijs/asn1js:
 * certs-only CMS SignedData (RFC 5652 §5, RFC 8551 §3.2.2: no signers, no
 * content) and the CSR attributes list (RFC 7030 §4.5.2).
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const idData = '1.2.840.113549.1.7.1';

/** A degenerate SignedData carrying `certs` (DER) and nothing else, in a ContentInfo. */
export function certsOnly(certs: readonly Buffer[]): Buffer {
  const signed = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: idData }),
    digestAlgorithms: [],
    signerInfos: [],
    certificates: certs.map((d) => pkijs.Certificate.fromBER(d)),
  });
  const info = new pkijs.ContentInfo({ contentType: pkijs.ContentInfo.SIGNED_DATA, content: signed.toSchema(true) });
  return Buffer.from(info.toSchema().toBER(false));
}

/** One CsrAttrs element: a bare OID, or an attribute (type and value OIDs). */
export type CsrAttr = string | { type: string; values: string[] };

/** CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID (RFC 7030 §4.5.2). */
export function csrAttrs(attrs: readonly CsrAttr[]): Buffer {
  const items = attrs.map((a) =>
    typeof a === 'string'
      ? new asn1js.ObjectIdentifier({ value: a })
      : new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: a.type }), new asn1js.Set({ value: a.values.map((v) => new asn1js.ObjectIdentifier({ value: v })) })] }),
  );
  return Buffer.from(new asn1js.Sequence({ value: items }).toBER(false));
}
