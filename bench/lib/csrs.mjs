/** A pool of P-256 CSRs made with openssl (`/CN=bN.bench.example`, the same name as DNS SAN), for the issuance benches. */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { mapLimit, runOk, writeWrkScript } from './harness.mjs';

/** `count` CSRs in `dir` (their keys beside them); returns [{name, pem}]. */
export async function makeCsrs(openssl, dir, count) {
  fs.mkdirSync(dir, { recursive: true });
  return mapLimit(
    Array.from({ length: count }, (_, i) => i + 1),
    Math.max(2, os.cpus().length * 2),
    async (n) => {
      const name = `b${n}.bench.example`;
      const out = path.join(dir, `${n}.csr`);
      // prettier-ignore
      await runOk(openssl, [
        'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', path.join(dir, `${n}.key`), '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`, '-out', out,
      ]);
      return { name, pem: fs.readFileSync(out, 'utf8') };
    },
  );
}

/**
 * The wrk script of the issuance benches: `POST /api/v1/certificates` under the `server` profile with `token`, the
 * CSRs (PEM) in rotation, each answer checked for a 201 with a PEM chain. Returns the script's path.
 */
export function issueWrkScript(file, token, csrPems) {
  return writeWrkScript(file, {
    path: '/api/v1/certificates',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    bodies: csrPems.map((csr) => JSON.stringify({ profile: 'server', csr })),
    expectStatus: 201,
    expectBody: '-----BEGIN CERTIFICATE-----',
  });
}
