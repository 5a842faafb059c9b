import type { IncomingMessage } from 'node:http';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import type { TokenRole } from '../tokens/tokens.js';
import { clearSessionCookie, consoleRoleOf, sessionCookie, sessionSetCookie } from './session.js';

const withCookie = (cookie?: string) => ({ headers: cookie === undefined ? {} : { cookie } }) as unknown as IncomingMessage;

describe('session cookie', () => {
  test('is read among other cookies; the first wins; an empty value is none', () => {
    expect(sessionCookie(withCookie('a=1; trellis_console=trellis_abc; b=2'))).toBe('trellis_abc');
    expect(sessionCookie(withCookie('trellis_console=trellis_first; trellis_console=trellis_second'))).toBe('trellis_first');
    expect(sessionCookie(withCookie('trellis_console='))).toBeUndefined();
    expect(sessionCookie(withCookie('xtrellis_console=trellis_abc'))).toBeUndefined();
    expect(sessionCookie(withCookie())).toBeUndefined();
  });

  test('is set HttpOnly, SameSite=Strict, Secure for 8 hours, and cleared with the same attributes', () => {
    expect(sessionSetCookie('trellis_AbC-_9')).toBe('trellis_console=trellis_AbC-_9; Max-Age=28800; HttpOnly; SameSite=Strict; Path=/; Secure');
    expect(clearSessionCookie).toBe('trellis_console=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/; Secure');
  });

  test('refuses a value that could add attributes', () => {
    expect(() => sessionSetCookie('trellis_x; Domain=evil.example')).toThrow(/letters, digits/);
  });
});

describe('consoleRoleOf', () => {
  test.each([
    ['auditor', 'auditor'],
    ['officer', 'officer'],
    ['administrator', 'administrator'],
    ['admin', 'administrator'],
  ] as const)('accepts: %s as %s', (stored, canonical) => {
    expect(consoleRoleOf({ id: 'tok_1', role: stored })).toBe(canonical);
  });

  test.each(['enrollment', 'issuer'] as const)('refuses: %s, naming the roles that may log in', (stored) => {
    let caught: unknown;
    try {
      consoleRoleOf({ id: 'tok_1', role: stored });
    } catch (err) {
      caught = err;
    }
    expect(isPkiError(caught, 'forbidden')).toBe(true);
    expect((caught as Error).message).toBe('token tok_1 has the role "enrollment", which only requests certificates: the console needs an auditor, officer or administrator token');
  });

  test('refuses: a role name it does not know', () => {
    expect(() => consoleRoleOf({ id: 'tok_1', role: 'root' as TokenRole })).toThrow(/the console needs an auditor, officer or administrator token/);
  });
});
