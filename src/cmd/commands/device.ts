/**
 * `trellis device …`: the device registry from the command line.
 *   register --id ID [--profile device] [--attr k=v]… [--reprovision never|reset|migrate] [--eab]
 *   import --csv FILE [--secrets-out FILE]
 *   list [--status S] · show --id ID · disable|enable|retire --id ID
 *   trust-manufacturer --ca FILE --name NAME
 * Enrollment secrets go to stdout once (register) or to a new 0600 file
 * (import --secrets-out); never to stderr, the audit log or an error.
 */
import fs from 'node:fs';
import { parse, required, UsageError } from '../../cli/args.js';
import { progress } from '../../cli/progress.js';
import { PkiError } from '../../errors/pki-error.js';
import { defaultDeviceProfile, DeviceRegistry, parseAttribute, type DeviceView } from '../../ra/devices/registry.js';
import { RevocationAuthority } from '../../ra/revoke.js';
import { openInstance, type Instance } from '../instance.js';
import { acmeAccounts, acmeProfiles } from '../acme-server.js';
import { openSecretSealing } from './acme.js';
import { actorOf, dataDirOf, out, passphraseFor } from './common.js';

const usage = `usage: trellis device register --id ID [--profile device] [--attr k=v]... [--reprovision never|reset|migrate] [--eab]
       trellis device import --csv FILE [--secrets-out FILE]
       trellis device list [--status registered|active|disabled|retired]
       trellis device show --id ID
       trellis device disable|enable|retire --id ID
       trellis device trust-manufacturer --ca FILE --name NAME`;

/** The registry of an instance; `revocation` defaults to one without listeners (the CLI: servers poll the database). */
export function deviceRegistryFor(instance: Instance, revocation?: RevocationAuthority): DeviceRegistry {
  return new DeviceRegistry({
    devices: instance.store.devices,
    manufacturerCas: instance.store.manufacturerCas,
    profiles: instance.profiles,
    audit: instance.audit,
    clock: instance.clock,
    revocation: revocation ?? new RevocationAuthority({ certificates: instance.store.certificates, audit: instance.audit, clock: instance.clock }),
  });
}

/** A device as JSON: dates as ISO text, never the secret hash. */
export function deviceJson(d: DeviceView): Record<string, unknown> {
  return { ...d, createdAt: d.createdAt.toISOString(), updatedAt: d.updatedAt.toISOString() };
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'register':
      return register(rest);
    case 'import':
      return importCsv(rest);
    case 'list':
      return list(rest);
    case 'show':
      return show(rest);
    case 'disable':
    case 'enable':
    case 'retire':
      return transition(sub, rest);
    case 'trust-manufacturer':
      return trustManufacturer(rest);
    default:
      throw new UsageError(usage);
  }
}

async function withRegistry<T>(data: string | undefined, fn: (registry: DeviceRegistry, instance: Instance) => Promise<T>): Promise<T> {
  const instance = await openInstance(dataDirOf(data));
  try {
    return await fn(deviceRegistryFor(instance), instance);
  } finally {
    await instance.close();
  }
}

const cli = () => ({ by: actorOf(), via: 'cli' as const });

async function register(argv: string[]): Promise<number> {
  const { values } = parse(argv, { id: { type: 'string' }, profile: { type: 'string' }, attr: { type: 'string', multiple: true }, reprovision: { type: 'string' }, eab: { type: 'boolean' } });
  const id = required(values.id, 'id');
  // --eab: an EAB key for the device's ACME directory, sealed under the online passphrase like `acme eab create`.
  const passphrase = values.eab ? await passphraseFor(values) : undefined;
  const attributes: Record<string, string> = {};
  for (const a of values.attr ?? []) {
    const [k, v] = parseAttribute(a);
    if (k in attributes) throw new UsageError(`--attr: "${k}" is given twice`);
    attributes[k] = v;
  }
  return withRegistry(values.data, async (registry, instance) => {
    const directory = values.profile ?? defaultDeviceProfile;
    if (passphrase !== undefined) {
      // Checked before the device is registered, so a refusal leaves nothing behind.
      if (!acmeProfiles(instance).includes(directory)) throw new UsageError(`--eab: profile "${directory}" has no ACME directory (have: ${acmeProfiles(instance).join(', ')})`);
      await openSecretSealing(instance, passphrase);
    }
    const { device, secret } = await registry.register({ id, profile: values.profile, attributes, reprovision: values.reprovision }, cli());
    let eab: { keyId: string; hmacKey: string } | undefined;
    if (passphrase !== undefined) {
      const k = await acmeAccounts(instance).createEab(device.profile, actorOf());
      await instance.store.devices.setEabKey(device.id, k.keyId, instance.clock.now());
      eab = { keyId: k.keyId, hmacKey: k.hmacKey.toString('base64url') };
    }
    const o = out(values);
    o.result({ id: device.id, secret, ...(eab ? { eab: { ...eab, directory: device.profile } } : {}) });
    if (!o.json) {
      // stdout carries the secret alone (then, with --eab, the kid and hmac lines), so `SECRET=$(trellis device register …)` works; the rest goes to stderr.
      process.stdout.write(`${secret}\n${eab ? `kid:  ${eab.keyId}\nhmac: ${eab.hmacKey}\n` : ''}`);
      process.stderr.write(`device ${device.id} registered (profile ${device.profile}, reprovision ${device.reprovision}); its enrollment secret${eab ? ' and EAB HMAC key are' : ' is'} shown only once\n`);
    }
    return 0;
  });
}

async function importCsv(argv: string[]): Promise<number> {
  const { values } = parse(argv, { csv: { type: 'string' }, 'secrets-out': { type: 'string' } });
  const csvPath = required(values.csv, 'csv');
  const secretsOut = values['secrets-out'];
  let text: string;
  try {
    text = fs.readFileSync(csvPath, 'utf8');
  } catch (err) {
    throw new UsageError(`--csv: cannot read ${csvPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  // The secrets file is created first, exclusively and 0600: an existing file is never overwritten, and
  // nobody can open it in between. It is removed again when the import is refused.
  let fd: number | undefined;
  if (secretsOut !== undefined) {
    try {
      fd = fs.openSync(secretsOut, 'wx', 0o600);
      if (process.platform !== 'win32') fs.fchmodSync(fd, 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(code === 'EEXIST' ? `--secrets-out: ${secretsOut} exists; secrets are written only to a new file` : `--secrets-out: cannot create ${secretsOut}: ${code ?? (err as Error).message}`);
    }
  }
  const start = performance.now();
  try {
    const shown = progress('device import');
    const r = await withRegistry(values.data, (registry) => registry.importCsv(text, { makeSecrets: fd !== undefined, onProgress: (done, total) => shown.update(done, total, 'devices'), ...cli() })).finally(() =>
      shown.end(),
    );
    if (fd !== undefined) {
      fs.writeSync(fd, r.secrets.map((s) => `${s.id},${s.secret}\n`).join(''));
      fs.closeSync(fd);
      fd = undefined;
    }
    const seconds = (performance.now() - start) / 1000;
    const o = out(values);
    o.result({ count: r.count, seconds: Number(seconds.toFixed(3)), ...(secretsOut !== undefined ? { secretsOut } : {}) });
    o.say(`imported ${r.count} devices in ${seconds.toFixed(2)} s${secretsOut !== undefined ? `; one-time secrets written to ${secretsOut} (mode 0600)` : ' (no secrets made)'}`);
    return 0;
  } catch (err) {
    if (fd !== undefined) {
      fs.closeSync(fd);
      fs.rmSync(secretsOut!, { force: true });
    }
    const problems = err instanceof PkiError ? (err.extra?.problems as { line: number; reason: string }[] | undefined) : undefined;
    if (problems) {
      // Every line, not only the first ones the message names.
      for (const p of problems) process.stderr.write(`${csvPath}:${p.line}: ${p.reason}\n`);
      throw new PkiError(err instanceof PkiError ? err.type : 'malformed', `nothing imported: ${problems.length} bad line${problems.length === 1 ? '' : 's'} in ${csvPath} (listed above)`);
    }
    throw err;
  }
}

async function list(argv: string[]): Promise<number> {
  const { values } = parse(argv, { status: { type: 'string' } });
  return withRegistry(values.data, async (registry) => {
    const o = out(values);
    const all: Record<string, unknown>[] = [];
    for (let after: string | undefined; ; ) {
      const page = await registry.list({ after, limit: 1000, status: values.status });
      for (const d of page) {
        if (o.json) all.push(deviceJson(d));
        else o.say([d.id, d.status, d.profile, `reprovision ${d.reprovision}`, Object.entries(d.attributes).map(([k, v]) => `${k}=${v}`).join(',') || '-'].join('  '));
      }
      if (page.length < 1000) break;
      after = page.at(-1)!.id;
    }
    o.result(all);
    return 0;
  });
}

function describe(d: DeviceView): string {
  return [
    `id           ${d.id}`,
    `status       ${d.status}`,
    `profile      ${d.profile}`,
    `issuer       ${d.issuerId ?? '(default)'}`,
    `reprovision  ${d.reprovision}`,
    `attributes   ${Object.entries(d.attributes).map(([k, v]) => `${k}=${v}`).join(', ') || '-'}`,
    `secret       ${d.hasSecret ? 'unused one-time secret on file' : 'none'}`,
    `created      ${d.createdAt.toISOString()}`,
    `updated      ${d.updatedAt.toISOString()}`,
  ].join('\n');
}

async function show(argv: string[]): Promise<number> {
  const { values } = parse(argv, { id: { type: 'string' } });
  const id = required(values.id, 'id');
  return withRegistry(values.data, async (registry) => {
    const d = await registry.find(id);
    const o = out(values);
    o.result(deviceJson(d));
    o.say(describe(d));
    return 0;
  });
}

async function transition(op: 'disable' | 'enable' | 'retire', argv: string[]): Promise<number> {
  const { values } = parse(argv, { id: { type: 'string' } });
  const id = required(values.id, 'id');
  return withRegistry(values.data, async (registry, instance) => {
    const o = out(values);
    if (op === 'retire') {
      const d = await registry.retire(id, cli());
      o.result({ ...deviceJson(d), revoked: d.revoked });
      const { ocspSeconds, crlSeconds } = instance.config.revocation;
      o.say(
        `device ${id} retired; ${d.revoked.length} certificate${d.revoked.length === 1 ? '' : 's'} revoked (cessationOfOperation)` +
          (d.revoked.length ? `: ${d.revoked.map((c) => c.serialHex).join(', ')}; OCSP answers "revoked" within ${ocspSeconds} s and its CRL within ${crlSeconds} s` : ''),
      );
    } else if (op === 'disable') {
      const d = await registry.disable(id, cli());
      o.result({ ...deviceJson(d), held: d.held });
      o.say(`device ${id} is disabled; ${d.held.length} certificate${d.held.length === 1 ? '' : 's'} on hold (certificateHold) until it is enabled`);
    } else {
      const d = await registry.enable(id, cli());
      o.result({ ...deviceJson(d), released: d.released });
      o.say(`device ${id} is ${d.status}; ${d.released.length} certificate${d.released.length === 1 ? '' : 's'} released from hold`);
    }
    return 0;
  });
}

async function trustManufacturer(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ca: { type: 'string' }, name: { type: 'string' } });
  const file = required(values.ca, 'ca');
  const name = required(values.name, 'name');
  let cert: Buffer;
  try {
    cert = fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`--ca: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return withRegistry(values.data, async (registry) => {
    const r = await registry.trustManufacturer(name, cert, cli());
    const o = out(values);
    o.result({ ...r, notAfter: r.notAfter.toISOString(), createdAt: r.createdAt.toISOString() });
    o.say(`manufacturer CA "${r.name}" trusted: ${r.subject}, SHA-256 ${r.sha256}, valid until ${r.notAfter.toISOString()}`);
    return 0;
  });
}
