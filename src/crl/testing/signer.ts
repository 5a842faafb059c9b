/**
 * A stand-in for the CA's CRL signer in src/crl tests: like
 * CertificateAuthority.crlSigner, it lints the TBS against the expectations
 * the encoder passes and signs only when the lint finds no error (the CA's
 * audit events are the CA's tests' business). `signed` counts the TBSs that
 * reached the key.
 */
import { lintCrl } from '../../lint/crl.js';
import { throwOnErrors } from '../../lint/index.js';
import type { CrlSigner } from '../build.js';

/** The names of a CA and a sign with its key (no lint). */
export interface TestCrlKey {
  subjectDer: Buffer;
  keyIdentifier: Buffer;
  signatureAlgorithm: Buffer;
  sign(tbs: Buffer): Promise<Buffer> | Buffer;
}

/** A CrlSigner that lints, then signs with `key`; `signed` holds each TBS signed. */
export function lintingSigner(key: TestCrlKey): CrlSigner & { signed: Buffer[] } {
  const signed: Buffer[] = [];
  return {
    subjectDer: key.subjectDer,
    keyIdentifier: key.keyIdentifier,
    signatureAlgorithm: key.signatureAlgorithm,
    signed,
    sign: async (tbs, expect) => {
      throwOnErrors(lintCrl(tbs, expect), `CRL lint failed (CRL number ${expect.crlNumber})`);
      signed.push(tbs);
      return key.sign(tbs);
    },
  };
}
