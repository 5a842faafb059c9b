/**
 * `trellis serve --tls` as a child process (the built CLI in dist/, so that
 * SIGKILL is a real crash), a mixed workload against one or more such nodes
 * (API issuance and revocation, ACME with the test client and http-01, EST
 * enrollment with a device secret), and the invariants a crash must not
 * break (issue 12): every certificate a client received is recorded, no
 * serial is used twice, CRL numbers never go back, and nothing recorded as
 * revoked is reported good by OCSP (OpenSSL judging the responses).
 *
 * The base URL is https://127.0.0.1:PORT of the first node: the server
 * certificate names that address, and clients of other nodes connect to
 * their port while signing ACME URLs of the base URL (AcmeClient connectTo).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { secretHashOf } from '../../src/ra/devices/enroll.js';
import { startDnsServer, type TestDnsServer } from '../../src/va/testing/dns-server.js';
import { AcmeClient, assertOk, startHttp01Responder, type Http01Responder } from './acme-client.js';
import { certsOfPkcs7, deviceCsr, estClient } from './device.js';
import { makeCsr, opensslRun } from './openssl.js';
import { testPassphrase, type TestPki } from './test-pki.js';

/** The CLI entry: bin/trellis.js (dist/), or TRELLIS_TEST_CLI naming another build's cmd/main.js. */
const bin = process.env.TRELLIS_TEST_CLI ?? path.join(import.meta.dirname, '../../bin/trellis.js');

/** The ACME side: an http-01 responder and a DNS server every test name resolves through (to 127.0.0.1). */
export interface AcmeWorld {
  http01: Http01Responder;
  dns: TestDnsServer;
  names: string[];
  close(): Promise<void>;
}

export async function startAcmeWorld(count = 4): Promise<AcmeWorld> {
  const names = Array.from({ length: count }, (_, i) => `crash-${i}.acme.test`);
  const http01 = await startHttp01Responder();
  const dns = await startDnsServer(Object.fromEntries(names.map((n) => [n, { a: ['127.0.0.1'] }])));
  return { http01, dns, names, close: async () => void (await Promise.all([http01.close(), dns.close()])) };
}

export interface ServeNode {
  child: ChildProcess;
  /** https://127.0.0.1:PORT of this node. */
  url: string;
  exited: Promise<void>;
  stderr(): string;
}

/** Starts `trellis serve --tls` on `port` for `dataDir`; resolves once it says it serves. */
export function startServeNode(dataDir: string, port: number, acme: AcmeWorld): Promise<ServeNode> {
  return new Promise((resolve, reject) => {
    const args = ['serve', '--tls', '--port', String(port), '--acme-http01-port', String(acme.http01.port), '--acme-resolver', acme.dns.address, '--acme-allow-address', '127.0.0.0/8'];
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, TRELLIS_PASSPHRASE: testPassphrase, TRELLIS_DATA: dataDir, TRELLIS_ACCESS_LOG: 'off' } });
    let err = '';
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /serving on (https:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1]!, exited, stderr: () => err });
    });
    child.once('exit', (code, signal) => reject(new Error(`serve exited (${code ?? signal}): ${err}`)));
  });
}

/** Sets the base URL (and short revocation propagation) in trellis.json before the nodes start. */
export function configureForNodes(pki: TestPki, basePort: number): void {
  const file = path.join(pki.dataDir, 'trellis.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  config.baseUrl = `https://127.0.0.1:${basePort}`;
  // Revocations reach OCSP within 1 s and the CRLs within 2 s, so CRLs are republished (new numbers) while the stream runs.
  config.revocation = { ...config.revocation, ocspSeconds: 1, crlSeconds: 2 };
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
}

/** An admin token made by the built CLI (the role names of the server that checks it). */
export async function adminToken(pki: TestPki): Promise<string> {
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [bin, 'token', 'create', '--role', 'admin', '--name', 'crash-driver'], { env: { ...process.env, TRELLIS_PASSPHRASE: testPassphrase, TRELLIS_DATA: pki.dataDir }, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, stdout, stderr }),
    ),
  );
  if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
  return r.stdout.trim();
}

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTPS request to a node, trusting the instance's root; never throws on a status. */
export function httpsRequest(rootPem: string, url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: opts.method ?? 'GET', ca: rootPem, agent: false, headers: opts.headers ?? {}, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** What clients were told while the workload ran. */
export interface Ledger {
  /** Certificates a client received: serial and where from. */
  received: { serialHex: string; via: 'api' | 'acme' | 'est'; node: number }[];
  /** Revocations a client was told succeeded. */
  revoked: Set<string>;
  /** CRL numbers seen (the ETag of each CRL) per scope file (full.crl, full-delta.crl), in order. */
  crlNumbers: Map<string, bigint[]>;
  /** Requests that failed because a node died under them (not counted as errors). */
  cut: number;
}

export const newLedger = (): Ledger => ({ received: [], revoked: new Set(), crlNumbers: new Map(), cut: 0 });

/** The CRLs the watcher reads: the full CRL, and the delta that changes with every revocation. */
export const watchedCrls = ['full.crl', 'full-delta.crl'];

/** Pre-made inputs: a server CSR for the API, devices registered with a one-time secret and their CSRs for EST. */
export interface WorkloadInputs {
  apiCsrPem: string;
  devices: { id: string; secret: string; csrB64: string }[];
}

export async function workloadInputs(pki: TestPki, devices: number, tag: string): Promise<WorkloadInputs> {
  const { csrPem } = await makeCsr(pki.dir, `api-${tag}`, `/CN=api-${tag}.example.test`, { sans: `DNS:api-${tag}.example.test` });
  const out: WorkloadInputs['devices'] = [];
  for (let i = 0; i < devices; i++) {
    const id = `dev-${tag}-${i}`;
    const secret = `enrollment-secret-${tag}-${i}`;
    await pki.instance.store.devices.insert({ id, status: 'registered', profile: 'device', issuerId: null, reprovision: 'never', attributes: {}, secretHash: secretHashOf(secret), eabKeyId: null }, new Date());
    out.push({ id, secret, csrB64: (await deviceCsr(pki.dir, id)).csrB64 });
  }
  return { apiCsrPem: csrPem, devices: out };
}

/** A connection refused or cut: what a client sees of a node that was killed. */
const isCut = (err: unknown): boolean => {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  return /ECONNREFUSED|ECONNRESET|EPIPE/.test(`${e?.code} ${e?.cause?.code}`) || /socket hang up|no answer|other side closed|socket disconnected/i.test(String(err) + String(e?.cause ?? ''));
};

export interface WorkloadTarget {
  /** Node index (for the ledger) and its URL. */
  node: number;
  url: string;
}

/**
 * Runs the workload against `targets` until `stop()` says so: per target,
 * `apiLoops` issuing loops, one revoking loop, one ACME loop and one EST loop,
 * and a CRL watcher. Requests cut by a killed node are counted, not thrown;
 * anything else unexpected (a 5xx, a wrong answer) throws.
 */
export async function runWorkload(opts: { pki: TestPki; baseUrl: string; token: string; acme: AcmeWorld; inputs: WorkloadInputs; targets: () => WorkloadTarget[]; ledger: Ledger; stop: () => boolean; apiLoops?: number }): Promise<void> {
  const { pki, ledger } = opts;
  const issuerId = pki.instance.cas.find((c) => c.role === 'issuing')!.id;
  const pick = (i: number) => {
    const t = opts.targets();
    return t[i % t.length]!;
  };
  const guard = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      if (!isCut(err)) throw err;
      ledger.cut++;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const api = (i: number) => async () => {
    for (let n = i; !opts.stop(); n++) {
      await guard(async () => {
        const t = pick(n);
        const r = await httpsRequest(pki.rootPem, `${t.url}/api/v1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ profile: 'server', csr: opts.inputs.apiCsrPem }) });
        if (r.status !== 201) throw new Error(`issue: HTTP ${r.status}: ${r.body.toString()}`);
        ledger.received.push({ serialHex: (JSON.parse(r.body.toString()) as { serialHex: string }).serialHex, via: 'api', node: t.node });
      });
    }
  };
  const revoker = async () => {
    for (let n = 0; !opts.stop(); n++) {
      const candidates = ledger.received.filter((c) => c.via === 'api' && !ledger.revoked.has(c.serialHex));
      if (candidates.length < 2) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const serialHex = candidates[0]!.serialHex;
      await guard(async () => {
        const r = await httpsRequest(pki.rootPem, `${pick(n).url}/api/v1/certificates/${serialHex}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'keyCompromise', ca: issuerId }) });
        // alreadyRevoked: an earlier attempt was done though its answer was cut.
        if (r.status !== 200 && !/alreadyRevoked/.test(r.body.toString())) throw new Error(`revoke: HTTP ${r.status}: ${r.body.toString()}`);
        ledger.revoked.add(serialHex);
      });
    }
  };
  const acmeLoop = async () => {
    for (let n = 0; !opts.stop(); n++) {
      await guard(async () => {
        // With several nodes the account is made on one and the order run on the next: no node keeps a session.
        const t = pick(n);
        const u = pick(n + 1);
        const client = await AcmeClient.create({ directoryUrl: `${opts.baseUrl}/acme/directory`, connectTo: t.url, caPem: pki.rootPem, keepAlive: false, timeoutMs: 20_000 });
        const other = u === t ? client : await client.fork({ connectTo: u.url, key: client.key });
        try {
          assertOk(await client.newAccount({ termsOfServiceAgreed: true }), 'newAccount', [201]);
          other.accountUrl = client.accountUrl;
          const name = opts.acme.names[n % opts.acme.names.length]!;
          const { certificate } = await other.obtainCertificate({ identifiers: [name], challengeType: 'http-01', respond: (_a, ch, keyAuth) => opts.acme.http01.set(ch.token, keyAuth), poll: { maxIntervalMs: 500 } });
          ledger.received.push({ serialHex: new X509Certificate(certificate.pem).serialNumber.toLowerCase(), via: 'acme', node: u.node });
        } finally {
          client.close();
          other.close();
        }
      });
    }
  };
  // Each device's secret works once: the EST loops share one cursor over the devices.
  let nextDevice = 0;
  const estLoop = async () => {
    for (let n = nextDevice++; !opts.stop() && n < opts.inputs.devices.length; n = nextDevice++) {
      const d = opts.inputs.devices[n]!;
      await guard(async () => {
        const t = pick(n);
        const r = await estClient({ baseUrl: t.url, ca: pki.rootPem }).simpleenroll(d.csrB64, { user: { id: d.id, secret: d.secret } });
        if (r.status !== 200) throw new Error(`EST simpleenroll: HTTP ${r.status}: ${r.text}`);
        const [pem] = await certsOfPkcs7(pki.dir, r.text);
        ledger.received.push({ serialHex: new X509Certificate(pem!).serialNumber.toLowerCase(), via: 'est', node: t.node });
      });
    }
  };
  const crlWatcher = async () => {
    for (let n = 0; !opts.stop(); n++) {
      for (const file of watchedCrls) {
        await guard(async () => {
          const r = await httpsRequest(pki.rootPem, `${pick(n).url}/crl/${issuerId}/${file}`);
          if (r.status !== 200) return;
          const seen = ledger.crlNumbers.get(file) ?? [];
          seen.push(BigInt(String(r.headers.etag).replace(/"/g, '')));
          ledger.crlNumbers.set(file, seen);
        });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const loops: Promise<void>[] = [];
  const targets = opts.targets().length;
  for (let i = 0; i < (opts.apiLoops ?? 4) * targets; i++) loops.push(api(i)());
  for (let i = 0; i < targets; i++) loops.push(acmeLoop(), estLoop());
  loops.push(revoker(), crlWatcher());
  await Promise.all(loops);
}

/**
 * Starts {@link runWorkload} without awaiting it: `failed()` says whether it
 * has already thrown (so a caller polling the ledger stops waiting), and
 * `done` settles when it ends, with its error if any.
 */
export function startWorkload(opts: Parameters<typeof runWorkload>[0]): { done: Promise<void>; failed(): boolean } {
  let error: unknown;
  const settled = runWorkload(opts).then(
    () => undefined,
    (err: unknown) => {
      error = err ?? new Error('workload failed');
    },
  );
  const done = settled.then(() => {
    if (error !== undefined) throw error;
  });
  // Observed here too: a test that fails before it awaits `done` must not also report an unhandled rejection.
  done.catch(() => undefined);
  return { failed: () => error !== undefined, done };
}

/** Rows of SQL, whichever database (SQLite file or PostgreSQL URL). */
export type Sql = (text: string) => Promise<Record<string, unknown>[]>;

/** Reads an instance's SQLite file (read-only) from outside the store. */
export const sqliteSql = (pki: TestPki): Sql => async (text) => {
  const db = new Database(path.join(pki.dataDir, 'trellis.db'), { readonly: true });
  try {
    return db.prepare(text).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
};

/** Reads a PostgreSQL database from outside the store. */
export const pgSql = (url: string): Sql => async (text) => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
};

/**
 * The crash invariants, checked against the database and a running node:
 * returns a summary for the test to assert on.
 */
export async function checkInvariants(pki: TestPki, sql: Sql, ledger: Ledger, nodeUrl: string): Promise<{ problems: string[]; revokedChecked: number; goodChecked: number; crlAfter: Map<string, bigint> }> {
  const problems: string[] = [];
  const issuerId = pki.instance.cas.find((c) => c.role === 'issuing')!.id;
  // 1. Every certificate a client received is recorded valid (or revoked); every acknowledged revocation is recorded.
  const rows = await sql(`SELECT "issuerId", "serialHex", "status" FROM "Certificate"`);
  const status = new Map(rows.map((r) => [`${r.issuerId}/${r.serialHex}`, String(r.status)]));
  for (const c of ledger.received) {
    const s = status.get(`${issuerId}/${c.serialHex}`);
    if (s !== 'valid' && s !== 'revoked') problems.push(`${c.via} certificate ${c.serialHex} (node ${c.node}) is recorded as ${s ?? 'nothing'}`);
  }
  for (const serialHex of ledger.revoked) if (status.get(`${issuerId}/${serialHex}`) !== 'revoked') problems.push(`revocation of ${serialHex} was acknowledged but the row says ${status.get(`${issuerId}/${serialHex}`)}`);
  // 2. No serial twice for a CA.
  const dup = await sql(`SELECT "issuerId", "serialHex", COUNT(*) AS n FROM "Certificate" GROUP BY "issuerId", "serialHex" HAVING COUNT(*) > 1`);
  for (const d of dup) problems.push(`serial ${d.serialHex} appears ${d.n} times for ${d.issuerId}`);
  const handed = ledger.received.map((c) => c.serialHex);
  if (new Set(handed).size !== handed.length) problems.push('a serial was handed out twice');
  // 3. CRL numbers never go back: each CRL served now (its number read by OpenSSL) is at least every number seen
  //    for it before and the highest number stored for it (nodes read what another stored within seconds), and the
  //    CA's sequence is past all of them.
  const storedRows = await sql(`SELECT "scope", MAX("crlNumber") AS n FROM "Crl" WHERE "caId" = '${issuerId}' GROUP BY "scope"`);
  const storedMax = new Map(storedRows.map((r) => [`${r.scope}.crl`, BigInt(String(r.n))]));
  const crlAfter = new Map<string, bigint>();
  const servedNumber = async (file: string): Promise<bigint | string> => {
    const crl = await httpsRequest(pki.rootPem, `${nodeUrl}/crl/${issuerId}/${file}`);
    const crlFile = path.join(pki.dir, `after-${Date.now()}-${file}`);
    fs.writeFileSync(crlFile, crl.body);
    const text = await opensslRun(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-crlnumber']);
    const m = /crlNumber=(?:0x)?([0-9A-Fa-f]+)/.exec(text.stdout);
    return m ? BigInt(`0x${m[1]}`) : `${file}: no CRL number (${text.stderr})`;
  };
  for (const [file, seen] of ledger.crlNumbers) {
    const maxBefore = seen.reduce((a, b) => (b > a ? b : a), 0n);
    const floor = (storedMax.get(file) ?? 0n) > maxBefore ? storedMax.get(file)! : maxBefore;
    let after = await servedNumber(file);
    for (let i = 0; typeof after === 'bigint' && after < floor && i < 25; i++) {
      await new Promise((r) => setTimeout(r, 200));
      after = await servedNumber(file);
    }
    if (typeof after === 'string') {
      problems.push(after);
      continue;
    }
    crlAfter.set(file, after);
    if (after < maxBefore) problems.push(`${file} after the crash has number ${after}, below ${maxBefore} seen before`);
    if (after < floor) problems.push(`${file} is served with number ${after} while ${floor} is stored`);
  }
  const sequence = await sql(`SELECT "last" FROM "CrlSequence" WHERE "caId" = '${issuerId}'`);
  const everSeen = [...ledger.crlNumbers.values()].flat().reduce((a, b) => (b > a ? b : a), 0n);
  if (BigInt(String(sequence[0]?.last ?? 0)) < everSeen) problems.push(`the CRL sequence is at ${sequence[0]?.last}, below ${everSeen} seen`);
  // 4. Nothing recorded revoked is reported good: OCSP over the node, each response judged by OpenSSL.
  const revokedRows = rows.filter((r) => r.status === 'revoked' && r.issuerId === issuerId).map((r) => String(r.serialHex));
  const goodSample = rows.filter((r) => r.status === 'valid' && r.issuerId === issuerId).slice(0, 3).map((r) => String(r.serialHex));
  const ocsp = async (serialHex: string): Promise<string> => {
    const req = path.join(pki.dir, `ocsp-${serialHex}.req`);
    const resp = path.join(pki.dir, `ocsp-${serialHex}.resp`);
    const made = await opensslRun(['ocsp', '-issuer', pki.issuingPemPath, '-serial', `0x${serialHex}`, '-no_nonce', '-reqout', req]);
    if (made.code !== 0) throw new Error(made.stderr);
    const r = await httpsRequest(pki.rootPem, `${nodeUrl}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: fs.readFileSync(req) });
    fs.writeFileSync(resp, r.body);
    const judged = await opensslRun(['ocsp', '-respin', resp, '-issuer', pki.issuingPemPath, '-serial', `0x${serialHex}`, '-CAfile', pki.rootPemPath, '-no_nonce']);
    if (!/Response verify OK/.test(judged.stderr + judged.stdout)) problems.push(`OCSP answer for ${serialHex} does not verify: ${judged.stderr}`);
    return /: (good|revoked|unknown)/.exec(judged.stdout)?.[1] ?? 'none';
  };
  // The restarted node reads revocations within ocspSeconds (1 s here): a revoked serial still said good is retried briefly.
  for (const serialHex of revokedRows) {
    let s = await ocsp(serialHex);
    for (let i = 0; s !== 'revoked' && i < 30; i++) {
      await new Promise((r) => setTimeout(r, 200));
      s = await ocsp(serialHex);
    }
    if (s !== 'revoked') problems.push(`OCSP says ${s} for ${serialHex}, recorded revoked`);
  }
  for (const serialHex of goodSample) {
    const s = await ocsp(serialHex);
    if (s !== 'good') problems.push(`OCSP says ${s} for ${serialHex}, recorded valid`);
  }
  return { problems, revokedChecked: revokedRows.length, goodChecked: goodSample.length, crlAfter };
}
