/**
 * Factory-list imports under hostile CSV (issue 12), on a real SQLite store
 * with the shipped profiles: a damaged list is imported whole or refused
 * with a client-type PkiError, and a refused list stores no device of it
 * (no partial import).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AuditLog } from '../../audit/audit-log.js';
import { systemClock } from '../../clock/clock.js';
import { isPkiError } from '../../errors/pki-error.js';
import { fuzzParams } from '../../pki/testing/mutate.js';
import { defaultProfilesDir, loadProfiles } from '../../profiles/load.js';
import { openStore, type Store } from '../../store/open.js';
import { RevocationAuthority } from '../revoke.js';
import { parseDeviceCsv } from './csv.js';
import { DeviceRegistry } from './registry.js';

const runs = fuzzParams(0x1e9, 60);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-registry-fuzz-'));
const actor = { by: 'test', via: 'cli' as const };
let store: Store;
let registry: DeviceRegistry;
let batch = 0;

beforeAll(async () => {
  store = await openStore(`file:${path.join(dir, 'db.sqlite')}`);
  const audit = new AuditLog(store.audit, systemClock);
  const profiles = await loadProfiles(defaultProfilesDir());
  registry = new DeviceRegistry({ devices: store.devices, manufacturerCas: store.manufacturerCas, profiles, audit, clock: systemClock, revocation: new RevocationAuthority({ certificates: store.certificates, audit, clock: systemClock }) });
  await registry.register({ id: 'taken-1' }, actor);
});
afterAll(async () => {
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A factory list of fresh ids (one batch per run), damaged as text. */
const damagedList = fc
  .tuple(fc.integer({ min: 1, max: 5 }), fc.boolean(), fc.nat(), fc.nat({ max: 12 }), fc.string({ unit: fc.constantFrom(...',"\n\r ab-_.:!é'.split('')), maxLength: 6 }), fc.boolean())
  .map(([n, withTaken, at, cut, insert, clean]) => {
    batch += 1;
    const rows = Array.from({ length: n }, (_, k) => `b${batch}-d${k},device,${k % 2 ? 'reset' : 'never'},site ${k}`);
    if (withTaken) rows.push('taken-1,device,never,x');
    const text = `id,profile,reprovision,site\n${rows.join('\n')}\n`;
    if (clean) return text;
    const p = at % (text.length + 1);
    return text.slice(0, p) + insert + text.slice(p + cut);
  });

describe('device import under hostile CSV', () => {
  test('a damaged list is imported whole or refused with a client-type PkiError, never in part', async () => {
    await fc.assert(
      fc.asyncProperty(damagedList, async (text) => {
        const ids = [...new Set(parseDeviceCsv(text).devices.map((d) => d.id).filter((id) => id !== ''))];
        const before = new Set(await store.devices.existing(ids));
        let imported: number | undefined;
        try {
          imported = (await registry.importCsv(text, { makeSecrets: false, ...actor })).count;
        } catch (err) {
          if (!(isPkiError(err, 'malformed') || isPkiError(err, 'badProfile') || isPkiError(err, 'conflict'))) throw err;
        }
        const after = new Set(await store.devices.existing(ids));
        if (imported === undefined) expect(after).toEqual(before);
        else {
          expect(imported).toBe(ids.length);
          expect(after).toEqual(new Set(ids));
        }
      }),
      runs,
    );
  });
});
