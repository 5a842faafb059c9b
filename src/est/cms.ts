/**
 * The DER bodies EST answers with (RFC 7030), built with pkijs/asn1js:
 * certs-only CMS SignedData (RFC 5652 §5, RFC 8551 §3.2.2: no signers, no
 * content) and the CSR attributes list (RFC 7030 §4.5.2).
 */
import * as asn1js from 'asn1js';

const idData = '1.2.840.113549.1.7.1';
const idSignedData = '1.2.840.113549.1.7.2';

/**
 * A degenerate SignedData carrying `certs` (DER) and nothing else, in a
 * ContentInfo, built with asn1js. Parsing each certificate into pkijs objects
 * only to encode it again cost 2 ms per enrollment answer (bench:enroll's
 * profile: 23 % of the server's time); a plain ASN.1 parse gives the same bytes.
 *
 * ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
 * SignedData ::= SEQUENCE { version 1, digestAlgorithms SET {}, encapContentInfo SEQUENCE { id-data },
 *                           certificates [0] IMPLICIT SET OF Certificate, signerInfos SET {} }
 */
/** A DER certificate as asn1js blocks: a plain ASN.1 parse, no X.509 schema (that is what cost the time). */
function asn1Of(der: Buffer): asn1js.AsnType {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1 || parsed.offset !== der.length) throw new Error('certsOnly: not one DER certificate');
  return parsed.result;
}

export function certsOnly(certs: readonly Buffer[]): Buffer {
  const signed = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      new asn1js.Set({ value: [] }),
      new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: idData })] }),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: certs.map(asn1Of) }),
      new asn1js.Set({ value: [] }),
    ],
  });
  const info = new asn1js.Sequence({
    value: [new asn1js.ObjectIdentifier({ value: idSignedData }), new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [signed] })],
  });
  return Buffer.from(info.toBER(false));
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
