import type pkcs11js from 'pkcs11js';
import { describe, expect, test } from 'vitest';
import { PkiError } from '../errors/pki-error.js';
import { SessionPool } from './pkcs11-session-pool.js';
import { Pkcs11Failure, type Token } from './pkcs11-token.js';

const CKR_OPERATION_ACTIVE = 0x90;
const CKR_FUNCTION_FAILED = 0x06;
const CKR_USER_NOT_LOGGED_IN = 0x101;
const CKR_SESSION_HANDLE_INVALID = 0xb3;
const CKR_OBJECT_HANDLE_INVALID = 0x82;
const fails = (code: number) => new Pkcs11Failure(code, `C_SignInit: 0x${code.toString(16)}`);

/** A token that hands out numbered sessions, records which were closed, and counts recoveries (each starts a generation). */
function fakeToken() {
  let next = 0;
  let generation = 0;
  const closed: number[] = [];
  const recovered: number[] = [];
  const token: Token = {
    pkcs11: { C_CloseSession: (s: Buffer) => closed.push(s[0]!) } as unknown as pkcs11js.PKCS11,
    slot: Buffer.from([0]),
    label: 'fake',
    openSession: () => Buffer.from([next++]),
    get generation() {
      return generation;
    },
    failure: null,
    recover(seen) {
      recovered.push(seen);
      if (seen === generation) generation += 1;
    },
    release: () => undefined,
  };
  return { token, closed, recovered, opened: () => next };
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

  test('runRecovering: after a lost login the token recovers once, stale sessions are closed, and the operation runs once more on a new session', async () => {
    const { token, closed, recovered } = fakeToken();
    const pool = new SessionPool(token, 2);
    const idle = await pool.run((s) => s[0]!);
    let calls = 0;
    const seen: [number, number][] = [];
    const result = await pool.runRecovering((s, generation) => {
      seen.push([s[0]!, generation]);
      if (calls++ === 0) throw fails(CKR_OBJECT_HANDLE_INVALID);
      return 'signed';
    });
    expect(result).toBe('signed');
    expect(recovered).toEqual([0]);
    // The first try had the idle session of generation 0; the second a new session of generation 1; the old one is closed.
    expect(seen).toEqual([[idle, 0], [1, 1]]);
    expect(closed).toEqual([idle]);
  });

  test('runRecovering: a second failure of the login is serverInternal naming the token; other failures are not retried', async () => {
    const { token, recovered } = fakeToken();
    const pool = new SessionPool(token, 1);
    let calls = 0;
    const err = await pool.runRecovering(() => {
      calls++;
      throw fails(calls === 1 ? CKR_SESSION_HANDLE_INVALID : CKR_USER_NOT_LOGGED_IN);
    }).catch((e: unknown) => e);
    expect(calls).toBe(2);
    expect(recovered).toEqual([0]);
    expect(err).toMatchObject({ type: 'serverInternal', message: 'PKCS#11 token "fake": the operation failed again after the login was restored' });
    let other = 0;
    await expect(pool.runRecovering(() => { other++; throw fails(CKR_FUNCTION_FAILED); })).rejects.toThrow('C_SignInit: 0x6');
    expect(other).toBe(1);
    expect(recovered).toEqual([0]);
  });

  test('runRecovering: concurrent callers that fail in one generation recover it once between them', async () => {
    const { token, recovered } = fakeToken();
    const pool = new SessionPool(token, 4);
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        pool.runRecovering(async (_s, generation) => {
          await tick();
          if (generation === 0) throw fails(CKR_USER_NOT_LOGGED_IN);
          return generation;
        }),
      ),
    );
    expect(results).toEqual([1, 1, 1, 1]);
    // Every caller reports the generation it saw; only the first starts a new one.
    expect(recovered).toEqual([0, 0, 0, 0]);
    expect(token.generation).toBe(1);
  });

  test('runRecovering: a failure of recover itself reaches the caller and the operation is not run again', async () => {
    const { token } = fakeToken();
    const refused = new PkiError('serverInternal', 'PKCS#11 token "fake": refused');
    token.recover = () => {
      throw refused;
    };
    const pool = new SessionPool(token, 1);
    let calls = 0;
    await expect(pool.runRecovering(() => { calls++; throw fails(CKR_USER_NOT_LOGGED_IN); })).rejects.toBe(refused);
    expect(calls).toBe(1);
  });
});
