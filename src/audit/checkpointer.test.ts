import { afterEach, expect, test, vi } from 'vitest';
import { systemClock } from '../clock/clock.js';
import { AuditCheckpointer } from './checkpointer.js';
import type { AuditCheckpointRepository } from './checkpoint-ports.js';
import type { AuditRepository } from './ports.js';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

test('start ticks once within the first period, then every period, until stop', async () => {
  vi.useFakeTimers();
  // The first tick at the middle of the first period.
  vi.spyOn(Math, 'random').mockReturnValue(0.5);
  let reads = 0;
  const events = { last: async () => (reads++, null) } as unknown as AuditRepository;
  const checkpoints = { latest: async () => null } as unknown as AuditCheckpointRepository;
  const signer = { serialHex: '01', certDer: Buffer.alloc(0), sign: async () => Buffer.alloc(0) };
  const c = new AuditCheckpointer({ events, checkpoints, signer, clock: systemClock, pollSeconds: 10 });
  c.start();
  await vi.advanceTimersByTimeAsync(4_999);
  expect(reads).toBe(0);
  await vi.advanceTimersByTimeAsync(5_001);
  expect(reads).toBe(1);
  await vi.advanceTimersByTimeAsync(10_000);
  expect(reads).toBe(2);
  await c.stop();
  await vi.advanceTimersByTimeAsync(60_000);
  expect(reads).toBe(2);
});
