/** `trellis ca cert [--root | --ca ID]`, `trellis ca list`, `trellis ca rotate …` (ca/rotate.ts), `trellis ca renew …` (ca/renew.ts) */
import { parse, UsageError } from '../../cli/args.js';
import { PkiError } from '../../errors/pki-error.js';
import { fingerprint } from '../../pki/certificate.js';
import { toPem } from '../../pki/pem.js';
import { openInstance } from '../instance.js';
import { dataDirOf, out } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'rotate') return (await import('./ca/rotate.js')).rotateCommand(rest);
  if (sub === 'renew') return (await import('./ca/renew.js')).renewCommand(rest);
  const { values } = parse(rest, { root: { type: 'boolean' }, ca: { type: 'string' } });
  const o = out(values);
  const instance = await openInstance(dataDirOf(values.data));
  try {
    if (sub === 'cert') {
      const active = instance.cas.filter((c) => c.keyState === 'active');
      const ca = values.ca
        ? instance.cas.find((c) => c.id === values.ca)
        : values.root
          ? active.find((c) => c.role === 'root')
          : active.find((c) => c.id === instance.config.defaultIssuer) ?? active.find((c) => c.role === 'issuing');
      if (!ca) throw new PkiError('notFound', values.ca ? `no CA "${values.ca}"` : 'no such CA');
      o.result({ id: ca.id, pem: toPem('CERTIFICATE', ca.certDer) });
      if (!o.json) process.stdout.write(toPem('CERTIFICATE', ca.certDer));
      return 0;
    }
    if (sub === 'list') {
      const rows = instance.cas.map((c) => ({ id: c.id, role: c.role, state: c.keyState, parent: c.parentId, subject: c.subject, notBefore: c.notBefore, notAfter: c.notAfter, sha256: fingerprint(c.certDer) }));
      o.result(rows);
      for (const r of rows) o.say(`${r.id.padEnd(14)} ${r.role.padEnd(8)} ${r.state.padEnd(9)} ${r.notAfter.toISOString().slice(0, 10)}  ${r.subject}\n${''.padEnd(34)}SHA-256 ${r.sha256}`);
      return 0;
    }
    throw new UsageError('usage: trellis ca cert [--root | --ca ID] | trellis ca list | trellis ca rotate --ca ID [--at ISO] [--new-id ID] | trellis ca renew --ca ID [--parent ID] [--validity 5y]');
  } finally {
    await instance.close();
  }
}
