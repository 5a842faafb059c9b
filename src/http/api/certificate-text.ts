/** A certificate decoded for reading, like `openssl x509 -text` (never by spawning openssl in the server). */
let x509: Promise<typeof import('@peculiar/x509')> | undefined;

/** Loaded on first use: the admin API's detail page is the only reader, and @peculiar/x509 wants reflect-metadata first. */
async function library(): Promise<typeof import('@peculiar/x509')> {
  x509 ??= import('reflect-metadata').then(() => import('@peculiar/x509'));
  return x509;
}

/** The decoding of `der`: version, serial, issuer, validity, subject, key, every extension, signature. */
export async function certificateText(der: Buffer): Promise<string> {
  const { X509Certificate } = await library();
  return new X509Certificate(der).toString('text');
}
