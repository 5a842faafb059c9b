import { describe, expect, test } from 'vitest';
import { isPkiError } from '../../errors/pki-error.js';
import { ariCertId, parseAriCertId, suggestedWindow } from './renewal-info.js';

describe('ARI certificate ids (RFC 9773 §4.1)', () => {
  test('known answer from RFC 9773 §4.1: keyIdentifier 69:88:5B:…:C8:D4 and serial 00:87:65:43:21', () => {
    const id = ariCertId('69885b6b87464041e1b37b847ba0ae2cde01c8d4', '87654321');
    expect(id).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
    expect(parseAriCertId(id)).toEqual({ issuerKeyIdHex: '69885b6b87464041e1b37b847ba0ae2cde01c8d4', serialHex: '87654321' });
  });

  test.each([
    ['no dot', 'aYhba4dGQEHhs3uEe6CuLN4ByNQ'],
    ['padding', 'aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE'],
    ['a negative serial', 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.h2VDIQ'],
    ['a serial with a needless leading zero', 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.ABI0'],
    ['non-canonical base64url', 'aYhba4dGQEHhs3uEe6CuLN4ByNR.AIdlQyE'],
    ['an empty part', '.AIdlQyE'],
  ])('rejects: %s', (_why, text) => {
    let err: unknown;
    try {
      parseAriCertId(text);
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, 'malformed')).toBe(true);
  });
});

describe('suggested window', () => {
  const notBefore = new Date('2026-01-01T00:00:00Z');
  const notAfter = new Date('2026-04-01T00:00:00Z'); // 90 days
  const now = new Date('2026-01-10T00:00:00Z');

  test('from two thirds to five sixths of the validity', () => {
    const w = suggestedWindow({ notBefore, notAfter, revoked: false }, null, now);
    expect(w.start.toISOString()).toBe('2026-03-02T00:00:00.000Z');
    expect(w.end.toISOString()).toBe('2026-03-17T00:00:00.000Z');
  });

  test('an operator window wins; a revoked certificate is due now whatever was set', () => {
    const override = { start: now, end: new Date(now.getTime() + 3600_000) };
    expect(suggestedWindow({ notBefore, notAfter, revoked: false }, override, now)).toEqual(override);
    const r = suggestedWindow({ notBefore, notAfter, revoked: true }, override, now);
    expect(r.end < now && r.start < r.end).toBe(true);
  });
});
