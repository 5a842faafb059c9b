/** Certificate serial numbers and the CRL shard derived from them. */
import { randomBytes } from 'node:crypto';

/** Source of randomness; tests pass a deterministic one. */
export type RandomSource = (n: number) => Buffer;
export const cryptoRandom: RandomSource = (n) => randomBytes(n);

// RFC 5280 §4.1.2.2: serials are positive and at most 20 octets; CA/B BR §7.1
// wants at least 64 bits from a CSPRNG. 16 random bytes with the top two bits
// forced to 01 keep 126 random bits, a fixed 16-octet length, and a DER
// INTEGER that never needs a sign octet nor loses a leading zero.
export function newSerial(random: RandomSource = cryptoRandom): { serial: Buffer; serialHex: string } {
  const serial = random(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  return { serial, serialHex: serial.toString('hex') };
}

/**
 * The CRL shard of a serial: bytes 1..3 (random) modulo the shard count. The
 * shard is written into the certificate's CRL distribution point at issuance
 * and stored with the record, so changing the count later never moves a certificate.
 */
export function crlShardOf(serialHex: string, shards: number): number {
  if (shards <= 1) return 0;
  return parseInt(serialHex.slice(2, 8).padEnd(6, '0'), 16) % shards;
}
