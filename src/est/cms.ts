/**
 * The DER bodies EST answers with (RFC 7030), built with pkijs/asn1js:
 * certs-only CMS SignedData (RFC 5652 §5, RFC 8551 §3.2.2: no signers, no
 * content) and the CSR attributes list (RFC 7030 §4.5.2).
 */
import * as asn1js from 'asn1js';

const idData = '1.2.840.113549.1.7.1';
const idSignedData = '1.2.840.113549.1.7.2';

/** A certificate's DER as an asn1js element, written as it is. */
function rawCertificate(der: Buffer): asn1js.AsnType {
  if (der.length < 2 || der[0] !== 0x30) throw new Error('certsOnly: not a DER certificate');
  // asn1js's RawData ignores the writer a constructed block hands its elements, so this writes the bytes itself.
  const block = {
    toBER(_sizeOnly?: boolean, writer?: asn1js.ViewWriter): ArrayBuffer {
      if (!writer) return Uint8Array.from(der).buffer;
      writer.write(der);
      return new ArrayBuffer(0);
    },
  };
  return block as unknown as asn1js.AsnType;
}

/**
 * A degenerate SignedData carrying `certs` (DER) and nothing else, in a
 * ContentInfo, built with asn1js. Each certificate goes in as its own DER
 * (written as it is): parsing it into pkijs objects only to encode it again cost
 * 2 ms per enrollment answer, and even a plain asn1js parse cost 1 ms
 * (bench:enroll's profile); the bytes are the CA's own, so nothing is gained
 * by taking them apart.
 *
 * ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
 * SignedData ::= SEQUENCE { version 1, digestAlgorithms SET {}, encapContentInfo SEQUENCE { id-data },
 *                           certificates [0] IMPLICIT SET OF Certificate, signerInfos SET {} }
 */
export function certsOnly(certs: readonly Buffer[]): Buffer {
  const signed = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      new asn1js.Set({ value: [] }),
      new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: idData })] }),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: certs.map(rawCertificate) }),
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
