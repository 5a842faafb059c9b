/**
 * `trellis acme eab create [--directory PROFILE]` (needs the online
 * passphrase: the HMAC key is stored sealed under it), `trellis acme eab list`, and
 * `trellis acme renew-early` (RFC 9773: pull the suggested renewal window of a
 * set of certificates forward, e.g. after a CA incident, so every ACME client
 * that asks renewalInfo renews now).
 */
import { parse, parseDurationFlag, UsageError } from '../../cli/args.js';
import { PkiError } from '../../errors/pki-error.js';
import { normaliseSerial } from '../../ra/revoke.js';
import { unlockIssuers, keystoreFor, openInstance, type Instance } from '../instance.js';
import { acmeAccounts, acmeProfiles } from '../acme-server.js';
import { actorOf, dataDirOf, out, passphraseFor } from './common.js';

const usage = `usage: trellis acme eab create [--directory PROFILE]
       trellis acme eab list
       trellis acme renew-early (--serial HEX ... | --ca ID | --profile P | --issued-before ISO | --all) [--within 1h]`;

function dateFlag(text: string | undefined, flag: string): Date | undefined {
  if (text === undefined) return undefined;
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new UsageError(`--${flag}: expected an ISO 8601 date, e.g. 2026-11-20T10:00:00Z`);
  return d;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'eab') return eab(rest);
  if (sub === 'renew-early') return renewEarly(rest);
  throw new UsageError(usage);
}

async function eab(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values } = parse(rest, { directory: { type: 'string' } });
  if (action !== 'create' && action !== 'list') throw new UsageError(usage);
  // Listing shows no key, so only create asks for the passphrase.
  const passphrase = action === 'create' ? await passphraseFor(values) : undefined;
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const o = out(values);
    if (action === 'list') {
      const keys = await instance.store.acmeEabKeys.list();
      o.result(keys.map(({ hmacKey: _secret, ...k }) => k));
      for (const k of keys) o.say(`${k.keyId}  ${k.directory ?? '(every directory)'}  created ${k.createdAt.toISOString()}  ${k.boundAccountId ? `bound to account ${k.boundAccountId}` : 'unused'}`);
      return 0;
    }
    const directory = values.directory ?? null;
    if (directory !== null && !acmeProfiles(instance).includes(directory)) throw new UsageError(`--directory: no ACME directory "${directory}" (have: ${acmeProfiles(instance).join(', ')})`);
    await openSecretSealing(instance, passphrase!);
    const { keyId, hmacKey } = await acmeAccounts(instance).createEab(directory, actorOf());
    // The HMAC key is shown once (base64url, as ACME clients take it: lego --eab --kid … --hmac …).
    o.result({ keyId, hmacKey: hmacKey.toString('base64url'), directory });
    if (!o.json) {
      process.stdout.write(`kid:  ${keyId}\nhmac: ${hmacKey.toString('base64url')}\n`);
      process.stderr.write(`EAB key ${keyId} created for ${directory ?? 'every directory'}; the HMAC key is shown only once and works for one account\n`);
    }
    return 0;
  } finally {
    await instance.close();
  }
}

/**
 * Seals new EAB keys under the online passphrase, as `serve` opens them:
 * unlocking the issuing CAs checks the passphrase against their keys (a
 * mistyped one fails here, before anything is stored) and binds the store's
 * secret sealer. The keystore is closed after; the sealer keeps its key.
 */
export async function openSecretSealing(instance: Instance, passphrase: string): Promise<void> {
  const keystore = keystoreFor(instance, passphrase);
  try {
    const issuers = await unlockIssuers(instance, keystore);
    if (issuers.all().length === 0) throw new PkiError('invalidConfig', 'no active issuing CA: EAB keys are sealed under the online passphrase, checked against an issuing CA key');
  } finally {
    keystore.close();
  }
}

async function renewEarly(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    serial: { type: 'string', multiple: true },
    ca: { type: 'string' },
    profile: { type: 'string' },
    'issued-before': { type: 'string' },
    all: { type: 'boolean' },
    within: { type: 'string' },
  });
  const serialHexes = values.serial?.map(normaliseSerial);
  const issuedBefore = dateFlag(values['issued-before'], 'issued-before');
  if (!serialHexes && !values.ca && !values.profile && !issuedBefore && !values.all) throw new UsageError(`say which certificates (or --all)\n${usage}`);
  const withinSeconds = values.within ? parseDurationFlag(values.within, 'within') : 3600;
  if (withinSeconds < 60) throw new UsageError('--within: at least 60 seconds, so clients have a window to hit');
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const now = instance.clock.now();
    // The window starts now: clients that poll renewalInfo renew within `within`, spread over it (RFC 9773 §4.2).
    const window = { start: now, end: new Date(now.getTime() + withinSeconds * 1000) };
    const changed = await instance.store.renewalWindows.setWindow(
      { ...(values.ca ? { issuerId: values.ca } : {}), ...(serialHexes ? { serialHexes } : {}), ...(values.profile ? { profile: values.profile } : {}), ...(issuedBefore ? { issuedBefore } : {}) },
      window,
      now,
    );
    await instance.audit.record('acme.renewal_window_pulled_forward', actorOf(), { certificates: changed, start: window.start.toISOString(), end: window.end.toISOString(), ca: values.ca ?? null, profile: values.profile ?? null, serials: serialHexes?.length ?? null, issuedBefore: issuedBefore?.toISOString() ?? null });
    const o = out(values);
    o.result({ certificates: changed, window: { start: window.start.toISOString(), end: window.end.toISOString() } });
    o.say(`${changed} certificates now suggest renewal between ${window.start.toISOString()} and ${window.end.toISOString()} (ACME renewalInfo)`);
    return 0;
  } finally {
    await instance.close();
  }
}
