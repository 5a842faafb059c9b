/**
 * A tiny authoritative DNS server over UDP for the validator's tests (RFC 1035
 * §4.1 message format): A and AAAA answers for the names it is given,
 * NXDOMAIN for the rest. Not for production use; it answers one question per
 * message and ignores EDNS.
 */
import dgram from 'node:dgram';
import { ipToBytes } from '../../pki/ip.js';

/** What the server answers for one name. `silent` never answers (to test timeouts). */
export type DnsEntry = { a?: string[]; aaaa?: string[] } | 'silent';

/** A running test DNS server. */
export interface TestDnsServer {
  /** `127.0.0.1:PORT`, the form the validator's `resolver` option takes. */
  address: string;
  /** Every question received, as `NAME TYPE` (`foo.test A`). */
  queries: string[];
  /** Replaces the answers (to change them between two queries). */
  set(name: string, entry: DnsEntry): void;
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const RCODE_NXDOMAIN = 3;

/** Starts the server on 127.0.0.1 and a free port; names are matched case-insensitively. */
export async function startDnsServer(zone: Record<string, DnsEntry>): Promise<TestDnsServer> {
  const entries = new Map(Object.entries(zone).map(([k, v]) => [k.toLowerCase(), v]));
  const queries: string[] = [];
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, peer) => {
    const q = parseQuestion(msg);
    if (!q) return;
    queries.push(`${q.name} ${q.type === TYPE_A ? 'A' : q.type === TYPE_AAAA ? 'AAAA' : q.type}`);
    const entry = entries.get(q.name.toLowerCase());
    if (entry === 'silent') return;
    const addresses = entry === undefined ? [] : q.type === TYPE_A ? (entry.a ?? []) : q.type === TYPE_AAAA ? (entry.aaaa ?? []) : [];
    socket.send(answer(msg, q.end, entry === undefined ? RCODE_NXDOMAIN : 0, q.type, addresses), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries,
    set: (name, entry) => void entries.set(name.toLowerCase(), entry),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** Header (12 octets), then QNAME as labels, QTYPE, QCLASS (RFC 1035 §4.1.1, §4.1.2). */
function parseQuestion(msg: Buffer): { name: string; type: number; end: number } | null {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return null;
  const labels: string[] = [];
  let p = 12;
  while (p < msg.length && msg[p] !== 0) {
    const len = msg[p]!;
    labels.push(msg.subarray(p + 1, p + 1 + len).toString('latin1'));
    p += 1 + len;
  }
  if (p + 5 > msg.length) return null;
  return { name: labels.join('.'), type: msg.readUInt16BE(p + 1), end: p + 5 };
}

/** A response echoing the question, with one answer RR per address (RFC 1035 §4.1.3), the name as a pointer to offset 12. */
function answer(query: Buffer, questionEnd: number, rcode: number, type: number, addresses: string[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  // QR=1, opcode 0, AA=1, RD copied, RA=1, RCODE.
  header.writeUInt16BE(0x8000 | 0x0400 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const rrs = addresses.map((a) => {
    const rdata = ipToBytes(a)!;
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(type, 2);
    rr.writeUInt16BE(1, 4); // class IN
    rr.writeUInt32BE(1, 6); // TTL
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  return Buffer.concat([header, query.subarray(12, questionEnd), ...rrs]);
}
