import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { acmeIdentifierHex, makeAcmeCertificate, type AcmeCertificateSpec } from './testing/acme-certificate.js';
import { startDnsServer, type TestDnsServer } from './testing/dns-server.js';
import { createValidator } from './validator.js';
import type { ValidationRequest, ValidationResult, ValidatorOptions } from './types.js';

const token = 'DGyRejmCefe7v4NfDGDKfA2hL8Bm6uN7sq1u4P4yj7Q';
const keyAuthorization = `${token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;
const digestHex = acmeIdentifierHex(keyAuthorization).slice(4);

interface Hello {
  servername: string | false | null;
  protocols: string[] | undefined;
}

interface Responder {
  port: number;
  hellos: Hello[];
  closed: number;
}

const servers: tls.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

type Alpn = 'acme' | 'none' | 'h2';

/** A tls-alpn-01 responder (RFC 8737 §3) presenting `cert`; records each ClientHello's SNI and ALPN list. */
async function respond(cert: { certPem: string; keyPem: string }, opts: { alpn?: Alpn; host?: string; maxVersion?: tls.SecureVersion } = {}): Promise<Responder> {
  const state: Responder = { port: 0, hellos: [], closed: 0 };
  const alpn = opts.alpn ?? 'acme';
  const server = tls.createServer({
    cert: cert.certPem,
    key: cert.keyPem,
    ...(opts.maxVersion ? { maxVersion: opts.maxVersion, minVersion: 'TLSv1' as const, ciphers: 'DEFAULT@SECLEVEL=0' } : {}),
    ...(alpn === 'none'
      ? {}
      : {
          ALPNCallback: ({ servername, protocols }: { servername: string; protocols: string[] }) => {
            state.hellos.push({ servername, protocols });
            const want = alpn === 'acme' ? 'acme-tls/1' : 'h2';
            return protocols.includes(want) ? want : undefined;
          },
        }),
  });
  server.on('secureConnection', (s) => {
    if (alpn === 'none') state.hellos.push({ servername: s.servername, protocols: undefined });
  });
  server.on('connection', (s) => s.on('close', () => state.closed++));
  // A failed handshake is part of several tests; the server side just drops it.
  server.on('tlsClientError', (_err, s) => s.destroy());
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, opts.host ?? '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

const certs: Record<string, { certPem: string; keyPem: string }> = {};
const specs: Record<string, AcmeCertificateSpec> = {
  goodIp: { san: 'IP:127.0.0.1', acmeIdentifierHex: acmeIdentifierHex(keyAuthorization) },
  goodIp6: { san: 'IP:::1', acmeIdentifierHex: acmeIdentifierHex(keyAuthorization) },
  goodDns: { san: 'DNS:acme.test', acmeIdentifierHex: acmeIdentifierHex(keyAuthorization) },
  upperDns: { san: 'DNS:ACME.Test', acmeIdentifierHex: acmeIdentifierHex(keyAuthorization) },
  wrongDigest: { san: 'IP:127.0.0.1', acmeIdentifierHex: acmeIdentifierHex(`${token}.anotherAccount`) },
  nonCritical: { san: 'IP:127.0.0.1', acmeIdentifierHex: acmeIdentifierHex(keyAuthorization), critical: false },
  extraSan: { san: 'IP:127.0.0.1,DNS:other.test', acmeIdentifierHex: acmeIdentifierHex(keyAuthorization) },
  dnsForIp: { san: 'DNS:1.0.0.127.in-addr.arpa', acmeIdentifierHex: acmeIdentifierHex(keyAuthorization) },
  noSan: { acmeIdentifierHex: acmeIdentifierHex(keyAuthorization) },
  noAcme: { san: 'IP:127.0.0.1' },
  rawDigest: { san: 'IP:127.0.0.1', acmeIdentifierHex: digestHex }, // the 32 octets without the OCTET STRING header
  shortDigest: { san: 'IP:127.0.0.1', acmeIdentifierHex: '0410' + digestHex.slice(0, 32) },
};

let dns: TestDnsServer;
beforeAll(async () => {
  for (const [name, spec] of Object.entries(specs)) certs[name] = await makeAcmeCertificate(spec);
  dns = await startDnsServer({ 'acme.test': { a: ['127.0.0.1'] } });
});
afterAll(() => dns.close());

const forIp = (value: string): ValidationRequest => ({ type: 'tls-alpn-01', identifier: { type: 'ip', value }, token, keyAuthorization });
const forDns = (value: string): ValidationRequest => ({ type: 'tls-alpn-01', identifier: { type: 'dns', value }, token, keyAuthorization });
const validator = (port: number, extra: ValidatorOptions = {}) => createValidator({ tlsAlpn01Port: port, allow: ['127.0.0.0/8', '::1'], resolver: dns.address, timeoutMs: 3_000, ...extra });
const errorOf = (r: ValidationResult) => (r.status === 'invalid' ? r.error : undefined);

describe('tls-alpn-01 accepts', () => {
  test('a DNS identifier: SNI is the name, the only ALPN offered is acme-tls/1 (RFC 8737 §3)', async () => {
    const s = await respond(certs.goodDns!);
    const r = await validator(s.port).validate(forDns('acme.test'));
    expect(r).toMatchObject({ status: 'valid', address: '127.0.0.1' });
    expect(r.records).toEqual([{ hostname: 'acme.test', port: s.port, addressesResolved: ['127.0.0.1'], addressUsed: '127.0.0.1' }]);
    expect(s.hellos).toEqual([{ servername: 'acme.test', protocols: ['acme-tls/1'] }]);
    // RFC 8737 §4: the client closes right after the handshake.
    await expect.poll(() => s.closed).toBe(1);
  });

  test('a dNSName in another case (DNS names compare case-insensitively)', async () => {
    const s = await respond(certs.upperDns!);
    expect((await validator(s.port).validate(forDns('acme.test'))).status).toBe('valid');
  });

  test('an IPv4 identifier: SNI is the in-addr.arpa name, the SAN an iPAddress (RFC 8738 §6)', async () => {
    const s = await respond(certs.goodIp!);
    const r = await validator(s.port).validate(forIp('127.0.0.1'));
    expect(r.status).toBe('valid');
    expect(s.hellos[0]!.servername).toBe('1.0.0.127.in-addr.arpa');
  });

  test('an IPv6 identifier: SNI is the nibble ip6.arpa name', async () => {
    const s = await respond(certs.goodIp6!, { host: '::1' });
    const r = await validator(s.port).validate(forIp('::1'));
    expect(r).toMatchObject({ status: 'valid', address: '::1' });
    expect(s.hellos[0]!.servername).toBe(`1.${'0.'.repeat(31)}ip6.arpa`);
  });
});

describe('tls-alpn-01 refuses', () => {
  test.each<[string, string, RegExp]>([
    ['a digest of another key authorization', 'wrongDigest', new RegExp(`is [0-9a-f]{64}, not SHA-256 of the key authorization \\(${digestHex}\\)`)],
    ['a non-critical acmeIdentifier', 'nonCritical', /acmeIdentifier extension .* is not critical/],
    ['a second SAN', 'extraSan', /must have exactly one subjectAltName, iPAddress 127\.0\.0\.1; it has iPAddress 127\.0\.0\.1, dNSName other\.test/],
    ['a dNSName of the reverse name instead of the iPAddress', 'dnsForIp', /exactly one subjectAltName, iPAddress 127\.0\.0\.1; it has dNSName 1\.0\.0\.127\.in-addr\.arpa/],
    ['no subjectAltName', 'noSan', /has no subjectAltName extension/],
    ['no acmeIdentifier', 'noAcme', /has no acmeIdentifier extension \(1\.3\.6\.1\.5\.5\.7\.1\.31\)/],
    ['a digest that is not DER OCTET STRING', 'rawDigest', /acmeIdentifier extension .* does not decode/],
    ['a 16-octet digest', 'shortDigest', /holds 16 octets, not a 32-octet SHA-256 digest/],
  ])('incorrectResponse: %s', async (_name, cert, detail) => {
    const s = await respond(certs[cert]!);
    const r = await validator(s.port).validate(forIp('127.0.0.1'));
    expect(errorOf(r)?.type).toBe('incorrectResponse');
    expect(errorOf(r)?.detail).toMatch(detail);
    expect(errorOf(r)?.detail).toContain(`certificate from 127.0.0.1:${s.port} (SNI 1.0.0.127.in-addr.arpa)`);
  });

  test('incorrectResponse: a certificate for another DNS name', async () => {
    const s = await respond(certs.goodIp!);
    const r = await validator(s.port).validate(forDns('acme.test'));
    expect(errorOf(r)?.detail).toMatch(/exactly one subjectAltName, dNSName acme\.test; it has iPAddress 127\.0\.0\.1/);
  });

  test('tls: a server that ignores ALPN', async () => {
    const s = await respond(certs.goodIp!, { alpn: 'none' });
    const r = await validator(s.port).validate(forIp('127.0.0.1'));
    expect(errorOf(r)).toEqual({ type: 'tls', detail: `127.0.0.1:${s.port} (SNI 1.0.0.127.in-addr.arpa) did not negotiate ALPN acme-tls/1 (negotiated none)` });
  });

  test('tls: a server that only speaks h2 ends the handshake with an alert', async () => {
    const s = await respond(certs.goodIp!, { alpn: 'h2' });
    const r = await validator(s.port).validate(forIp('127.0.0.1'));
    expect(errorOf(r)?.type).toBe('tls');
    expect(errorOf(r)?.detail).toContain(`TLS handshake with 127.0.0.1:${s.port} (SNI 1.0.0.127.in-addr.arpa) failed`);
    expect(errorOf(r)?.detail).toMatch(/no.application.protocol/i);
  });

  test('tls: a server that offers at most TLS 1.1 (RFC 8737 §4 requires 1.2 or higher)', async () => {
    const s = await respond(certs.goodIp!, { maxVersion: 'TLSv1.1' });
    const r = await validator(s.port).validate(forIp('127.0.0.1'));
    expect(errorOf(r)?.type).toBe('tls');
    expect(errorOf(r)?.detail).toMatch(/protocol.version|unsupported.protocol/i);
  });

  test('tls: a peer that is not TLS at all', async () => {
    const plain = net.createServer((sock) => sock.resume().end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const r = await validator((plain.address() as AddressInfo).port).validate(forIp('127.0.0.1'));
      expect(errorOf(r)?.type).toBe('tls');
      expect(errorOf(r)?.detail).toMatch(/wrong.version.number|packet.length/i);
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  test('connection: a responder that never finishes the handshake runs into timeoutMs', async () => {
    let closed = 0;
    // Reads (so that it sees the validator hang up) but never answers the ClientHello.
    const silent = net.createServer((sock) => sock.resume().on('close', () => closed++));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const r = await validator(port, { timeoutMs: 250 }).validate(forIp('127.0.0.1'));
      expect(errorOf(r)).toEqual({ type: 'connection', detail: `timed out after 250 ms (the budget for the whole validation) while in the TLS handshake with 127.0.0.1:${port} (SNI 1.0.0.127.in-addr.arpa)` });
      await expect.poll(() => closed).toBe(1);
    } finally {
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
