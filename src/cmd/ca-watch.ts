/**
 * `serve` notices CA changes made by other processes after it started: a CA
 * made or taken over by `trellis ca rotate` or a ceremony (on this machine or
 * another node on the same database), a rotation scheduled with `--at`, and
 * trellis.json's issuer choice rewritten by a takeover. Every few seconds it
 * reads the CA records, unlocks online issuing CAs it does not hold yet, takes
 * `defaultIssuer` and `profileIssuers` from trellis.json again, and re-reads
 * rotations.json. Key states need none of this: the CA reads them every second.
 */
import type { Keystore } from '../keys/signing-key.js';
import fs from 'node:fs';
import { configFile, readInstanceConfig } from '../config/instance-config.js';
import { unlockNewIssuers, type Instance } from './instance.js';

export interface CaWatchOptions {
  seconds: number;
  log: (e: Record<string, unknown>) => void;
  /** Called with the ids of issuing CAs unlocked since the last pass (their CRLs and OCSP responders start here). */
  onNewIssuers: (ids: string[]) => Promise<void>;
  /** Called after every pass (the rotation timer re-reads rotations.json). */
  onPass?: () => Promise<void> | void;
}

/** Takes `defaultIssuer` and `profileIssuers` from trellis.json into the open instance (nothing else is reloaded while serving). */
function reloadIssuerChoice(instance: Instance): void {
  const next = readInstanceConfig(instance.dataDir);
  const config = { ...instance.config, profileIssuers: next.profileIssuers };
  if (next.defaultIssuer === undefined) delete config.defaultIssuer;
  else config.defaultIssuer = next.defaultIssuer;
  instance.config = config;
}

/** One pass: CA records, new issuers, then the issuer choice (when trellis.json changed since `seen`). Returns the ids unlocked. */
export async function refreshCas(instance: Instance, keystore: Keystore, seen: { configMtimeMs?: number } = {}): Promise<string[]> {
  await instance.reloadCas();
  // New CAs are unlocked before trellis.json may name them: a request never sees a choice it cannot sign with.
  const unlocked = await unlockNewIssuers(instance, keystore);
  const mtime = fs.statSync(configFile(instance.dataDir)).mtimeMs;
  if (mtime !== seen.configMtimeMs) {
    reloadIssuerChoice(instance);
    seen.configMtimeMs = mtime;
  }
  return unlocked;
}

/** Runs {@link refreshCas} every `seconds`; a failed pass is logged and the next one tries again. Returns a stop function. */
export function watchCas(instance: Instance, keystore: Keystore, opts: CaWatchOptions): () => void {
  let running = false;
  const seen: { configMtimeMs?: number } = {};
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => {
      try {
        const ids = await refreshCas(instance, keystore, seen);
        if (ids.length) {
          opts.log({ level: 'info', msg: 'issuing CAs unlocked', issuers: ids });
          await opts.onNewIssuers(ids);
        }
        await opts.onPass?.();
      } catch (err) {
        opts.log({ level: 'error', msg: 'reading CA changes failed; trying again', error: String(err) });
      } finally {
        running = false;
      }
    })();
  }, opts.seconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
