import { describe, expect, test } from 'vitest';
import { chainHash, genesisHash } from './audit-log.js';

describe('chainHash', () => {
  test('is SHA-256 of the newline-joined fields, UTF-8 (the value sha256sum gives for the same text)', () => {
    // printf '%s\n7\n2030-01-02T03:04:05.678Z\ncertificate.issued\nätor\n{"subject":"CN=Straße 漢字"}' 000…0 | sha256sum
    const draft = { at: new Date('2030-01-02T03:04:05.678Z'), type: 'certificate.issued', actor: 'ätor' };
    expect(chainHash(genesisHash, 7, draft, JSON.stringify({ subject: 'CN=Straße 漢字' }))).toBe('55a000d9179efc6ea52da9297a784ab929278eb1c7e9ab76b6d39b73389605ca');
  });
});
