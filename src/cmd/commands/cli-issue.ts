/** `trellis issue --profile P --csr FILE [--out FILE] [--format pem|der] [--ca ID] [--validity 30d]` */
import fs from 'node:fs';
import { parse, parseDurationFlag, required, UsageError } from '../../cli/args.js';
import { PkiError } from '../../errors/pki-error.js';
import { toPem } from '../../pki/pem.js';
import { IssuerRegistry, keystoreFor, openInstance, registrationAuthority } from '../instance.js';
import { actorOf, dataDirOf, out, passphraseFor } from './common.js';

/** Largest CSR file read (a CSR is a few KB; anything bigger is not a CSR). */
const maxCsrBytes = 64 * 1024;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { profile: { type: 'string' }, csr: { type: 'string' }, out: { type: 'string' }, format: { type: 'string' }, ca: { type: 'string' }, validity: { type: 'string' } });
  const profile = required(values.profile, 'profile');
  const csrFile = required(values.csr, 'csr');
  const format = values.format ?? 'pem';
  if (format !== 'pem' && format !== 'der') throw new UsageError('--format must be pem or der');
  let csr: Buffer;
  try {
    if (fs.statSync(csrFile).size > maxCsrBytes) throw new PkiError('payloadTooLarge', `${csrFile} is larger than ${maxCsrBytes} bytes`);
    csr = fs.readFileSync(csrFile);
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('notFound', `cannot read ${csrFile}`, { cause: err });
  }
  const passphrase = await passphraseFor(values);
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const issuers = await IssuerRegistry.unlock(instance, keystoreFor(instance, passphrase));
    const issued = await registrationAuthority(instance, issuers).requestCertificate({
      profile,
      csr,
      ...(values.ca ? { issuer: values.ca } : {}),
      ...(values.validity ? { validitySeconds: parseDurationFlag(values.validity, 'validity') } : {}),
      requestedVia: 'cli',
      requestedBy: actorOf(),
    });
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
