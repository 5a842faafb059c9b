/** The to-be-signed certificate, encoded directly (no object graph) from parts that are mostly cached. */
import { bitString, ctx, int, seq, time, uintFromBytes } from '../pki/der.js';

export interface TbsParts {
  serial: Buffer;
  signatureAlgorithm: Buffer;
  issuerName: Buffer;
  notBefore: Date;
  notAfter: Date;
  subjectName: Buffer;
  spkiDer: Buffer;
  extensions: Buffer[];
}

const v3 = ctx(0, true, int(2));

// TBSCertificate ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, serialNumber CertificateSerialNumber,
//   signature AlgorithmIdentifier, issuer Name, validity Validity, subject Name,
//   subjectPublicKeyInfo SubjectPublicKeyInfo, …, extensions [3] EXPLICIT Extensions OPTIONAL }
export function encodeTbs(p: TbsParts): Buffer {
  return seq(
    v3,
    uintFromBytes(p.serial),
    p.signatureAlgorithm,
    p.issuerName,
    seq(time(p.notBefore), time(p.notAfter)),
    p.subjectName,
    p.spkiDer,
    ctx(3, true, seq(...p.extensions)),
  );
}

// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
export const encodeCertificate = (tbsDer: Buffer, signatureAlgorithm: Buffer, signature: Buffer): Buffer =>
  seq(tbsDer, signatureAlgorithm, bitString(signature));
