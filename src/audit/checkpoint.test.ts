import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { genesisHash } from './audit-log.js';
import { checkpointSignatureValid, decodeCheckpointFile, encodeCheckpointFile, eventDigest, formatCheckpoint, parseCheckpoint, type CheckpointStatement } from './checkpoint.js';
import type { ParsedCertificate } from '../pki/certificate.js';

const head = 'ab'.repeat(32);
const statement: CheckpointStatement = {
  events: 3,
  head,
  time: new Date('2030-01-02T03:04:05.678Z'),
  base: 1,
  baseHash: 'cd'.repeat(32),
  digests: ['0011223344556677', '8899aabbccddeeff'],
};

describe('checkpoint body', () => {
  test('is the documented text, and parses back to the same statement', () => {
    const body = formatCheckpoint(statement);
    expect(body).toBe(
      `trellis-audit-checkpoint v1\nevents 3\nhead ${head}\ntime 2030-01-02T03:04:05.678Z\nbase 1 ${'cd'.repeat(32)}\ndigests 2\n0011223344556677\n8899aabbccddeeff\n`,
    );
    expect(parseCheckpoint(body)).toEqual(statement);
  });

  test('the first checkpoint starts at the genesis hash', () => {
    const first = { ...statement, base: 0, baseHash: genesisHash, digests: ['0011223344556677', '8899aabbccddeeff', '0123456789abcdef'] };
    expect(parseCheckpoint(formatCheckpoint(first))).toEqual(first);
  });

  const good = formatCheckpoint(statement);
  test.each([
    ['no final line feed', good.slice(0, -1), /end with a line feed/],
    ['another version', good.replace('v1', 'v2'), /first line/],
    ['CRLF line ends', good.replace(/\n/g, '\r\n'), /./],
    ['an upper-case head', good.replace(head, head.toUpperCase()), /head must be 64/],
    ['a short head', good.replace(head, 'ab'), /head must be 64/],
    ['a negative count', good.replace('events 3', 'events -3'), /events must be a whole number/],
    ['a count with a leading zero', good.replace('events 3', 'events 03'), /events must be a whole number/],
    ['a base beyond events', good.replace('base 1', 'base 4'), /beyond events/],
    ['a time without milliseconds', good.replace('03:04:05.678Z', '03:04:05Z'), /time must be/],
    ['a time in another zone', good.replace('05.678Z', '05.678+01:00'), /time must be/],
    ['a digest missing', good.replace('8899aabbccddeeff\n', ''), /digest lines|digests must be/],
    ['a digest too many', good + '0011223344556677\n', /2 digest lines announced, 3 present/],
    ['a wrong digest count', good.replace('digests 2', 'digests 1'), /digests must be 2/],
    ['a short digest', good.replace('8899aabbccddeeff', '8899'), /16 lower-case hex/],
    ['an extra header field', good.replace('events 3', 'events 3 more'), /extra fields/],
    ['lines out of order', good.replace(`events 3\nhead ${head}`, `head ${head}\nevents 3`), /must start with "events "/],
    ['base 0 with another hash', formatCheckpoint({ ...statement, base: 0, digests: ['0011223344556677', '8899aabbccddeeff', '0123456789abcdef'] }), /genesis/],
  ])('refuses %s', (_name, body, why) => {
    expect(() => parseCheckpoint(body)).toThrow(why);
  });
});

describe('event digest', () => {
  const event = { at: new Date('2030-01-01T00:00:00.000Z'), type: 'certificate.issued', actor: 'cli:test', data: '{"serialHex":"01"}' };

  test('is the first 8 bytes of SHA-256 over at, type, actor and data', () => {
    // printf '2030-01-01T00:00:00.000Z\ncertificate.issued\ncli:test\n{"serialHex":"01"}' | sha256sum | cut -c1-16
    expect(eventDigest(event)).toBe('85b8425dec1bcb9a');
    expect(eventDigest(event)).not.toBe(eventDigest({ ...event, data: '{"serialHex":"02"}' }));
    expect(eventDigest(event)).not.toBe(eventDigest({ ...event, at: new Date('2030-01-01T00:00:00.001Z') }));
    expect(eventDigest(event)).not.toBe(eventDigest({ ...event, actor: 'cli:other' }));
  });

  test('leaves the seq out, so a renumbered event keeps its digest', () => {
    expect(eventDigest({ ...event, seq: 5 } as typeof event)).toBe(eventDigest({ ...event, seq: 4 } as typeof event));
  });
});

describe('checkpoint file', () => {
  test('round-trips body, signature and certificate as three PEM blocks', () => {
    const f = { body: formatCheckpoint(statement), signature: Buffer.from([0x30, 1, 2]), certDer: Buffer.from([0x30, 3, 4]) };
    const text = encodeCheckpointFile(f);
    expect(text).toMatch(/^-----BEGIN TRELLIS AUDIT CHECKPOINT-----\n[\s\S]+-----BEGIN TRELLIS AUDIT CHECKPOINT SIGNATURE-----\n[\s\S]+-----BEGIN CERTIFICATE-----\n/);
    expect(decodeCheckpointFile(text)).toEqual(f);
  });

  test('refuses a file without a signature block', () => {
    const text = encodeCheckpointFile({ body: 'x\n', signature: Buffer.from([1]), certDer: Buffer.from([2]) }).replace(/-----BEGIN TRELLIS AUDIT CHECKPOINT SIGNATURE-----[\s\S]*?-----END TRELLIS AUDIT CHECKPOINT SIGNATURE-----\n/, '');
    expect(() => decodeCheckpointFile(text)).toThrow(/one "TRELLIS AUDIT CHECKPOINT SIGNATURE" PEM block, found 0/);
  });
});

describe('checkpoint signature', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = { spkiDer: publicKey.export({ type: 'spki', format: 'der' }) } as ParsedCertificate;
  const body = formatCheckpoint(statement);
  const signature = sign('sha256', Buffer.from(body), { key: privateKey, dsaEncoding: 'der' });

  test('verifies over the exact body', () => {
    expect(checkpointSignatureValid(body, signature, cert)).toBe(true);
  });
  test.each([
    ['a changed body', body.replace('events 3', 'events 4'), signature],
    ['a flipped signature byte', body, Buffer.from(signature.map((b, i) => (i === signature.length - 1 ? b ^ 1 : b)))],
    ['a signature that is not DER', body, Buffer.from('junk')],
  ])('refuses %s', (_name, b, s) => {
    expect(checkpointSignatureValid(b, s, cert)).toBe(false);
  });
});
