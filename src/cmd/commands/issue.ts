/**
 * `trellis issue --profile P --csr FILE [--out FILE] [--format pem|der] [--ca ID] [--validity 30d]`
 * `trellis issue --profile P --generate-key --subject 'serialNumber=ID' --p12 FILE --p12-passphrase-file F [--ca ID] [--validity 30d]`
 *
 * With --generate-key Trellis makes the key pair (ECDSA P-256) and writes it
 * only into the PKCS#12 file (created 0600, never overwritten); the key is
 * never logged or stored.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { parse, parseDurationFlag, required, UsageError } from '../../cli/args.js';
import { PkiError } from '../../errors/pki-error.js';
import { ctx, oid, seq, bitString, int } from '../../pki/der.js';
import { encodeName, nameOrder, type NameAttribute } from '../../pki/name.js';
import { toPem } from '../../pki/pem.js';
import { buildPkcs12 } from '../../pki/pkcs12.js';
import { unlockIssuers, keystoreFor, openInstance, registrationAuthority } from '../instance.js';
import { actorOf, dataDirOf, out, passphraseFor } from './common.js';

/** Largest CSR file read (a CSR is a few KB; anything bigger is not a CSR). */
const maxCsrBytes = 64 * 1024;
/** Largest PKCS#12 passphrase file read. */
const maxPassphraseBytes = 4096;

/** `CN=a,serialNumber=b` → attributes (only the ones Trellis names). */
export function parseSubjectFlag(text: string): Partial<Record<NameAttribute, string>> {
  const out: Partial<Record<NameAttribute, string>> = {};
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    const k = part.slice(0, i).trim() as NameAttribute;
    const v = part.slice(i + 1).trim();
    if (i <= 0 || !v) throw new UsageError(`--subject: "${part}" is not TYPE=value`);
    if (!(nameOrder as readonly string[]).includes(k)) throw new UsageError(`--subject: ${k} is not one of ${nameOrder.join(', ')}`);
    if (out[k] !== undefined) throw new UsageError(`--subject: ${k} given twice`);
    out[k] = v;
  }
  return out;
}

/** A PKCS#10 CSR (RFC 2986) for `subject`, signed with the P-256 `key` (ecdsa-with-SHA256). */
function csrFor(subject: Partial<Record<NameAttribute, string>>, key: KeyObject, spkiDer: Buffer): Buffer {
  const info = seq(int(0), encodeName(subject), spkiDer, ctx(0, true));
  const algorithm = seq(oid('1.2.840.10045.4.3.2'));
  return seq(info, algorithm, bitString(sign('sha256', info, { key, dsaEncoding: 'der' })));
}

function readPassphraseFile(file: string): string {
  let text: string;
  try {
    if (fs.statSync(file).size > maxPassphraseBytes) throw new UsageError(`--p12-passphrase-file: ${file} is larger than ${maxPassphraseBytes} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('notFound', `cannot read ${file}`, { cause: err });
  }
  // The first line, as openssl -passin file: reads it.
  const pass = text.split(/\r?\n/)[0]!;
  if (!pass) throw new UsageError(`--p12-passphrase-file: ${file} holds an empty passphrase`);
  return pass;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    profile: { type: 'string' },
    csr: { type: 'string' },
    out: { type: 'string' },
    format: { type: 'string' },
    ca: { type: 'string' },
    validity: { type: 'string' },
    'generate-key': { type: 'boolean' },
    subject: { type: 'string' },
    p12: { type: 'string' },
    'p12-passphrase-file': { type: 'string' },
  });
  const profile = required(values.profile, 'profile');
  const generate = values['generate-key'] === true;
  const format = values.format ?? 'pem';
  if (format !== 'pem' && format !== 'der') throw new UsageError('--format must be pem or der');
  let csr: Buffer;
  let key: KeyObject | undefined;
  let p12Pass: string | undefined;
  if (generate) {
    if (values.csr) throw new UsageError('--generate-key makes the key: give --subject, not --csr');
    if (!values.p12) throw new UsageError('--generate-key needs --p12 FILE (the only place the new key is written)');
    if (values.out) throw new UsageError('--generate-key writes --p12 FILE, not --out');
    p12Pass = readPassphraseFile(required(values['p12-passphrase-file'], 'p12-passphrase-file'));
    if (fs.existsSync(values.p12)) throw new PkiError('conflict', `${values.p12} already exists; issue never overwrites`);
    const subject = parseSubjectFlag(required(values.subject, 'subject'));
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    key = pair.privateKey;
    csr = csrFor(subject, key, pair.publicKey.export({ type: 'spki', format: 'der' }));
  } else {
    if (values.p12 || values['p12-passphrase-file'] || values.subject) throw new UsageError('--p12, --p12-passphrase-file and --subject go with --generate-key');
    const csrFile = required(values.csr, 'csr');
    try {
      if (fs.statSync(csrFile).size > maxCsrBytes) throw new PkiError('payloadTooLarge', `${csrFile} is larger than ${maxCsrBytes} bytes`);
      csr = fs.readFileSync(csrFile);
    } catch (err) {
      if (err instanceof PkiError) throw err;
      throw new PkiError('notFound', `cannot read ${csrFile}`, { cause: err });
    }
  }
  const passphrase = await passphraseFor(values);
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const issuers = await unlockIssuers(instance, keystoreFor(instance, passphrase));
    const issued = await registrationAuthority(instance, issuers).requestCertificate({
      profile,
      csr,
      ...(values.ca ? { issuer: values.ca } : {}),
      ...(values.validity ? { validitySeconds: parseDurationFlag(values.validity, 'validity') } : {}),
      requestedVia: 'cli',
      requestedBy: actorOf(),
    });
    if (key && values.p12 && p12Pass !== undefined) {
      const p12 = await buildPkcs12({ keyPkcs8: key.export({ type: 'pkcs8', format: 'der' }), certDer: issued.certDer, chainDer: issued.chainDer, passphrase: p12Pass });
      try {
        fs.writeFileSync(values.p12, p12, { flag: 'wx', mode: 0o600 });
      } catch (err) {
        throw new PkiError('conflict', `cannot write ${values.p12} (it may already exist; issue never overwrites)`, { cause: err });
      }
      out(values).result({ serialHex: issued.serialHex, issuer: issued.issuerId, profile: issued.profile, notBefore: issued.notBefore, notAfter: issued.notAfter, file: values.p12 });
      process.stderr.write(`issued ${issued.serialHex} (${profile}) with a new P-256 key → ${values.p12}\n`);
      return 0;
    }
    const body = format === 'der' ? issued.certDer : [issued.certDer, ...issued.chainDer].map((d) => toPem('CERTIFICATE', d)).join('');
    if (values.out) {
      try {
        fs.writeFileSync(values.out, body, { flag: 'wx' });
      } catch (err) {
        throw new PkiError('conflict', `cannot write ${values.out} (it may already exist; issue never overwrites)`, { cause: err });
      }
    } else if (!values.json) process.stdout.write(body);
    out(values).result({ serialHex: issued.serialHex, issuer: issued.issuerId, profile: issued.profile, notBefore: issued.notBefore, notAfter: issued.notAfter, ...(values.out ? { file: values.out } : { chain: format === 'pem' ? body : undefined }) });
    if (values.out) process.stderr.write(`issued ${issued.serialHex} (${profile}) → ${values.out}\n`);
    return 0;
  } finally {
    await instance.close();
  }
}
