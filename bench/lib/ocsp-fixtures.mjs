/**
 * OCSP fixtures shared by bench:ocsp and bench:memory: random serials in the
 * form Trellis stores, certificate rows inserted straight into an instance's
 * SQLite database (only issuer, serial and status matter to OCSP), and one
 * GET path per serial built by `openssl ocsp -reqout`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runOk } from './harness.mjs';

/** `n` serials: 16 random octets, top bit clear and first octet non-zero (no sign or leading zero octet). */
export function serials(n) {
  const rnd = crypto.randomBytes(16 * n);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const b = rnd.subarray(i * 16, i * 16 + 16);
    b[0] = (b[0] & 0x7f) | 0x01;
    out[i] = b.toString('hex');
  }
  return out;
}

/**
 * Inserts `list` ({serialHex, revoked}) as issued certificates of the active
 * issuing CA of the instance in `dataDir` (`root`: the checkout, for the
 * compiled crlShardOf). Returns the CA id, the expiry and revocation time used.
 */
export async function insertCertificates(root, dataDir, list) {
  const { default: Database } = await import('better-sqlite3');
  const { crlShardOf } = await import(path.join(root, 'dist', 'ca', 'serial.js'));
  const config = JSON.parse(fs.readFileSync(path.join(dataDir, 'trellis.json'), 'utf8'));
  const db = new Database(path.join(dataDir, 'trellis.db'));
  try {
    const caId = db.prepare(`SELECT id FROM "CertificateAuthority" WHERE role = 'issuing' AND "keyState" = 'active'`).get().id;
    const iso = (d) => d.toISOString().replace('Z', '+00:00'); // the store's DateTime text (src/store/sqlite-hot-path.ts)
    const now = Date.now();
    const notBefore = new Date(now - 30 * 86_400_000);
    const notAfter = new Date(now + 365 * 86_400_000);
    const revokedAt = new Date(now - 86_400_000);
    const insert = db.prepare(`INSERT INTO "Certificate" ("issuerId","serialHex","profile","subject","sans","notBefore","notAfter","status","crlShard","requestedVia","requestedBy","revokedAt","revocationReason","revokedBy","createdAt","issuedAt")
      VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`);
    const shards = config.crlShards ?? 16;
    db.transaction(() => {
      for (const c of list) {
        const r = c.revoked;
        insert.run(caId, c.serialHex, 'device', 'CN=bench', '[]', iso(notBefore), iso(notAfter), r ? 'revoked' : 'valid', crlShardOf(c.serialHex, shards), 'cli', 'bench', r ? iso(revokedAt) : null, r ? 1 : null, r ? 'bench' : null, iso(notBefore), iso(notBefore));
      }
    })();
    return { caId, expiry: notAfter, revokedAt };
  } finally {
    db.close();
  }
}

/**
 * One OCSPRequest with many CertIDs → one request per CertID: the
 * requestList entries are copied into single-entry requests (DER lengths
 * recomputed by hand, no library).
 */
export function splitRequest(der) {
  const tlvAt = (buf, off) => {
    let p = off + 1;
    let len = buf[p++];
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
    }
    return { start: p, end: p + len, headerStart: off };
  };
  const lenBytes = (n) => (n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]));
  const seq = (...parts) => {
    const body = Buffer.concat(parts);
    return Buffer.concat([Buffer.from([0x30]), lenBytes(body.length), body]);
  };
  const top = tlvAt(der, 0);
  const tbs = tlvAt(der, top.start);
  const list = tlvAt(der, tbs.start); // no version, no requestorName in openssl's -no_nonce requests
  const out = [];
  for (let p = list.start; p < list.end; ) {
    const r = tlvAt(der, p);
    out.push(seq(seq(seq(der.subarray(r.headerStart, r.end)))));
    p = r.end;
  }
  return out;
}

/** GET /ocsp/{base64} paths, one nonce-less SHA-1 CertID each, for `serialHexes` under the CA in `issuerPem` (openssl, 200 serials a call). */
export async function ocspGetPaths(openssl, tmpFile, issuerPem, serialHexes) {
  const paths = [];
  for (let i = 0; i < serialHexes.length; i += 200) {
    const chunk = serialHexes.slice(i, i + 200);
    await runOk(openssl, ['ocsp', '-issuer', issuerPem, '-no_nonce', ...chunk.flatMap((s) => ['-serial', `0x${s}`]), '-reqout', tmpFile]);
    paths.push(...splitRequest(fs.readFileSync(tmpFile)).map((der) => `/ocsp/${encodeURIComponent(der.toString('base64'))}`));
  }
  return paths;
}
