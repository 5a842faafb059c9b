/**
 * Takeovers of issuing CAs (`trellis ca rotate`): carried out at once, or at
 * a time kept in `<data>/rotations.json` beside trellis.json (per node, like
 * the issuer choice it changes). A due takeover is carried out by the first
 * command that opens the issuing CAs (unlockIssuers) or by `serve`'s
 * timer at its time: the successor's key becomes active and the old one
 * deactivated (ca/rotation.ts), then the `defaultIssuer` and `profileIssuers`
 * entries of trellis.json that named the old CA name the successor.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { takeOver } from '../ca/rotation.js';
import { configFile, instanceConfigSchema } from '../config/instance-config.js';
import { PkiError } from '../errors/pki-error.js';
import type { Instance } from './instance.js';

const rotationsSchema = z.array(z.object({ from: z.string().min(1), to: z.string().min(1), at: z.string().datetime() }).strict());

/** One scheduled takeover: `to` takes over issuance from `from` at `at` (ISO 8601, UTC). */
export type Rotation = z.infer<typeof rotationsSchema>[number];

const rotationsFile = (dataDir: string): string => path.join(dataDir, 'rotations.json');

/** Replaces `file` in one rename, 0600. */
function replaceFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
}

/** The takeovers still to be carried out, oldest first. */
export function readRotations(dataDir: string): Rotation[] {
  const file = rotationsFile(dataDir);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new PkiError('invalidConfig', `${file}: not valid JSON`, { cause: err });
  }
  const parsed = rotationsSchema.safeParse(raw);
  if (!parsed.success) throw new PkiError('invalidConfig', `${file}: ${parsed.error.issues[0]!.path.join('.') || '(root)'}: ${parsed.error.issues[0]!.message}`);
  return parsed.data.sort((a, b) => a.at.localeCompare(b.at));
}

function writeRotations(dataDir: string, rotations: Rotation[]): void {
  if (rotations.length === 0) fs.rmSync(rotationsFile(dataDir), { force: true });
  else replaceFile(rotationsFile(dataDir), JSON.stringify(rotations, null, 2) + '\n');
}

/** Records a takeover for later; a CA already waiting to be rotated is refused. */
export function scheduleRotation(instance: Pick<Instance, 'dataDir'>, rotation: Rotation): void {
  const pending = readRotations(instance.dataDir);
  const clash = pending.find((r) => r.from === rotation.from || r.to === rotation.from);
  if (clash) throw new PkiError('conflict', `CA "${rotation.from}" is already part of a scheduled rotation ("${clash.from}" to "${clash.to}" at ${clash.at}); see ${rotationsFile(instance.dataDir)}`);
  writeRotations(instance.dataDir, [...pending, rotation]);
}

/**
 * Points the `defaultIssuer` and `profileIssuers` entries that name `from` at
 * `to`, in trellis.json and in the open instance. Returns the keys changed.
 */
export function retargetIssuers(instance: Pick<Instance, 'dataDir' | 'config'>, from: string, to: string): string[] {
  const file = configFile(instance.dataDir);
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { defaultIssuer?: string; profileIssuers?: Record<string, string> };
  const changed: string[] = [];
  if (raw.defaultIssuer === from) {
    raw.defaultIssuer = to;
    changed.push('defaultIssuer');
  }
  for (const [profile, ca] of Object.entries(raw.profileIssuers ?? {})) {
    if (ca !== from) continue;
    raw.profileIssuers![profile] = to;
    changed.push(`profileIssuers.${profile}`);
  }
  if (changed.length === 0) return changed;
  const parsed = instanceConfigSchema.safeParse(raw);
  if (!parsed.success) throw new PkiError('invalidConfig', `${file}: ${parsed.error.issues[0]!.message}`);
  replaceFile(file, JSON.stringify(raw, null, 2) + '\n');
  instance.config = parsed.data;
  return changed;
}

/** Carries out one takeover now: keys (audited transitions), then trellis.json, then the instance's CA list. */
export async function carryOut(instance: Instance, from: string, to: string, actor: string): Promise<{ configChanged: string[] }> {
  await takeOver({ cas: instance.store.cas, audit: instance.audit, clock: instance.clock, keyStates: instance.authority.keyStates }, from, to, actor);
  const configChanged = retargetIssuers(instance, from, to);
  await instance.audit.record('ca.rotated', actor, { from, to, config: configChanged });
  await instance.reloadCas();
  return { configChanged };
}

/** Carries out the scheduled takeovers whose time has come; returns them. */
export async function applyDueRotations(instance: Instance, actor: string): Promise<Rotation[]> {
  const pending = readRotations(instance.dataDir);
  const now = instance.clock.now().getTime();
  const due = pending.filter((r) => Date.parse(r.at) <= now);
  for (const r of due) {
    await carryOut(instance, r.from, r.to, actor);
    writeRotations(instance.dataDir, readRotations(instance.dataDir).filter((p) => !(p.from === r.from && p.to === r.to)));
  }
  return due;
}

/** Longest single wait of a timer (setTimeout takes 32-bit milliseconds). */
const maxWaitMs = 2 ** 31 - 1;

/**
 * `serve`: carries out each scheduled takeover at its time, then calls
 * `onApplied`. `rearm` reads rotations.json again (a rotation scheduled after
 * the start: serve's CA watch calls it). Failures are logged and retried a
 * minute later.
 */
export function startRotationTimer(instance: Instance, log: (e: Record<string, unknown>) => void, onApplied: () => Promise<void>): { rearm(): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let ticking = false;
  /** After a failure, the retry a minute later stands: rearm does not bring it forward. */
  let retryAt = 0;
  const arm = (): void => {
    clearTimeout(timer);
    if (stopped || ticking) return;
    const next = readRotations(instance.dataDir)[0];
    if (!next) return;
    const wait = Math.min(maxWaitMs, Math.max(0, Date.parse(next.at) - instance.clock.now().getTime()));
    timer = setTimeout(() => void tick(), wait);
    timer.unref();
  };
  const tick = async (): Promise<void> => {
    ticking = true;
    try {
      const done = await applyDueRotations(instance, 'trellis-serve');
      for (const r of done) log({ level: 'info', msg: 'issuing CA rotated', from: r.from, to: r.to, at: r.at });
      if (done.length) await onApplied();
      ticking = false;
      arm();
    } catch (err) {
      ticking = false;
      retryAt = Date.now() + 60_000;
      log({ level: 'error', msg: 'scheduled CA rotation failed; retrying in a minute', error: String(err) });
      if (!stopped) (timer = setTimeout(() => void tick(), 60_000)).unref();
    }
  };
  arm();
  return {
    rearm: () => {
      if (Date.now() < retryAt) return;
      try {
        arm();
      } catch (err) {
        log({ level: 'error', msg: 'reading scheduled rotations failed', error: String(err) });
      }
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
