import type pkcs11js from 'pkcs11js';
import { describe, expect, test } from 'vitest';
import { PkiError } from '../errors/pki-error.js';
import { SessionPool } from './pkcs11-session-pool.js';
import { Pkcs11Failure, type Token } from './pkcs11-token.js';

const CKR_OPERATION_ACTIVE = 0x90;
const CKR_FUNCTION_FAILED = 0x06;

/** A token that hands out numbered sessions and records which were closed. */
function fakeToken() {
  let next = 0;
  const closed: number[] = [];
  const token: Token = {
    pkcs11: { C_CloseSession: (s: Buffer) => closed.push(s[0]!) } as unknown as pkcs11js.PKCS11,
    slot: Buffer.from([0]),
    label: 'fake',
    openSession: () => Buffer.from([next++]),
    release: () => undefined,
  };
  return { token, closed, opened: () => next };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('SessionPool', () => {
  test('never more than `size` operations at once, each on a session no other operation holds; waiters go first come, first served', async () => {
    const { token, opened } = fakeToken();
    const pool = new SessionPool(token, 3);
    const inUse = new Set<number>();
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        pool.run(async (s) => {
          expect(inUse.has(s[0]!)).toBe(false);
          inUse.add(s[0]!);
          most = Math.max(most, inUse.size);
          order.push(i);
          await tick();
          inUse.delete(s[0]!);
        }),
      ),
    );
    expect(most).toBe(3);
    expect(opened()).toBe(3);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  test('a session that failed with CKR_OPERATION_ACTIVE is closed and never given out again; other failures keep it', async () => {
    const { token, closed } = fakeToken();
    const pool = new SessionPool(token, 1);
    let used = -1;
    await expect(pool.run((s) => { used = s[0]!; throw new PkiError('serverInternal', 'x', { cause: new Pkcs11Failure(CKR_OPERATION_ACTIVE, 'C_SignInit: CKR_OPERATION_ACTIVE') }); })).rejects.toThrow('x');
    expect(closed).toEqual([used]);
    const second = await pool.run((s) => s[0]!);
    expect(second).not.toBe(used);
    await expect(pool.run(() => { throw new Pkcs11Failure(CKR_FUNCTION_FAILED, 'C_Sign: CKR_FUNCTION_FAILED'); })).rejects.toThrow('CKR_FUNCTION_FAILED');
    expect(await pool.run((s) => s[0]!)).toBe(second);
  });

  test('close waits for operations in progress, closes every session, and refuses waiting and later callers', async () => {
    const { token, closed } = fakeToken();
    const pool = new SessionPool(token, 2);
    let finish!: () => void;
    const slow = pool.run(() => new Promise<string>((r) => (finish = () => r('done'))));
    await pool.run(() => undefined);
    const busy = pool.run(() => new Promise<void>((r) => setTimeout(r, 20)));
    const waiting = pool.run(() => 'never');
    const closing = pool.close();
    await expect(waiting).rejects.toMatchObject({ type: 'forbidden' });
    let closedYet = false;
    void closing.then(() => (closedYet = true));
    await busy;
    await tick();
    expect(closedYet).toBe(false);
    finish();
    expect(await slow).toBe('done');
    await closing;
    expect(closed.sort()).toEqual([0, 1]);
    await expect(pool.run(() => 'late')).rejects.toMatchObject({ type: 'forbidden' });
  });
});
