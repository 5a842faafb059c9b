/** `trellis revoke --serial HEX --reason REASON [--invalidity-date ISO] [--ca ID]` */
import { parse, required, UsageError } from '../../cli/args.js';
import { RevocationAuthority } from '../../ra/revoke.js';
import { openInstance } from '../instance.js';
import { actorOf, dataDirOf, out } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { serial: { type: 'string' }, reason: { type: 'string' }, 'invalidity-date': { type: 'string' }, ca: { type: 'string' } });
  const serial = required(values.serial, 'serial');
  const reason = values.reason ?? 'unspecified';
  let invalidityDate: Date | undefined;
  if (values['invalidity-date']) {
    invalidityDate = new Date(values['invalidity-date']);
    if (Number.isNaN(invalidityDate.getTime())) throw new UsageError('--invalidity-date: expected an ISO 8601 date, e.g. 2026-11-20T10:00:00Z');
  }
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const ra = new RevocationAuthority({ certificates: instance.store.certificates, audit: instance.audit, clock: instance.clock });
    const r = await ra.revoke({ serialHex: serial, ...(values.ca ? { issuerId: values.ca } : {}), reason, ...(invalidityDate ? { invalidityDate } : {}), by: actorOf(), via: 'cli' });
    const { ocspSeconds, crlSeconds } = instance.config.revocation;
    const o = out(values);
    o.result({ ...r, ocspWithinSeconds: ocspSeconds, crlWithinSeconds: crlSeconds });
    o.say(
      r.status === 'revoked'
        ? `revoked ${r.serialHex} (${r.reason}) from ${r.issuerId}; OCSP answers "revoked" within ${ocspSeconds} s and its CRL within ${crlSeconds} s`
        : `hold lifted on ${r.serialHex}; OCSP answers "good" within ${ocspSeconds} s and the delta CRL lists removeFromCRL within ${crlSeconds} s`,
    );
    return 0;
  } finally {
    await instance.close();
  }
}
