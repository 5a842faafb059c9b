/**
 * PKCS#12 (RFC 7292) built with pkijs: the private key in a PBES2-shrouded
 * key bag and the certificates in a PBES2-encrypted SafeContents, both
 * AES-256-CBC with PBKDF2-HMAC-SHA256, and an HMAC-SHA256 MAC (the PKCS#12
 * KDF). OpenSSL 3 reads it without the legacy provider.
 */
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const oids = {
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  localKeyId: '1.2.840.113549.1.9.21',
  friendlyName: '1.2.840.113549.1.9.20',
};

/** PBKDF2 iterations for the bags and the MAC (OpenSSL 3's default is 2048; NIST SP 800-132 asks for more). */
export const pkcs12Iterations = 100_000;

export interface Pkcs12Input {
  /** The private key, PKCS#8 DER. */
  keyPkcs8: Buffer;
  /** The certificate of that key, DER. */
  certDer: Buffer;
  /** CA certificates to include (DER), issuer first. */
  chainDer?: readonly Buffer[];
  passphrase: string;
  friendlyName?: string;
  iterations?: number;
}

export async function buildPkcs12(input: Pkcs12Input): Promise<Buffer> {
  const password = new TextEncoder().encode(input.passphrase).buffer as ArrayBuffer;
  const iterations = input.iterations ?? pkcs12Iterations;
  const keyId = createHash('sha1').update(input.certDer).digest();
  const leafAttrs = [
    new pkijs.Attribute({ type: oids.localKeyId, values: [new asn1js.OctetString({ valueHex: new Uint8Array(keyId) })] }),
    ...(input.friendlyName ? [new pkijs.Attribute({ type: oids.friendlyName, values: [new asn1js.BmpString({ value: input.friendlyName })] })] : []),
  ];
  const certBag = (der: Buffer, attrs?: pkijs.Attribute[]) =>
    new pkijs.SafeBag({ bagId: oids.certBag, bagValue: new pkijs.CertBag({ certId: oids.x509Certificate, parsedValue: pkijs.Certificate.fromBER(der) }), ...(attrs ? { bagAttributes: attrs } : {}) });
  const keyBag = new pkijs.SafeBag({
    bagId: oids.shroudedKeyBag,
    bagValue: new pkijs.PKCS8ShroudedKeyBag({ parsedValue: pkijs.PrivateKeyInfo.fromBER(input.keyPkcs8) }),
    bagAttributes: leafAttrs,
  });
  const pbes2 = { password, contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256 }, hmacHashAlgorithm: 'SHA-256', iterationCount: iterations };
  await (keyBag.bagValue as pkijs.PKCS8ShroudedKeyBag).makeInternalValues(pbes2);
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0,
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            // The key bag is shrouded itself (PBES2); its SafeContents is plain data, as OpenSSL writes it.
            { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [keyBag] }) },
            { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: [certBag(input.certDer, leafAttrs), ...(input.chainDer ?? []).map((d) => certBag(d))] }) },
          ],
        },
      }),
    },
  });
  await pfx.parsedValue!.authenticatedSafe!.makeInternalValues({ safeContents: [{}, pbes2] });
  await pfx.makeInternalValues({ password, iterations, pbkdf2HashAlgorithm: 'SHA-256', hmacHashAlgorithm: 'SHA-256' });
  return Buffer.from(pfx.toSchema().toBER(false));
}
