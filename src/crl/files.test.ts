import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { CrlPublisher } from './crl-publisher.js';
import { publishCrlFiles } from './files.js';
import type { CrlRecord } from './ports.js';

const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

/** What publishCrlFiles asks of a publisher when it does not regenerate: the CRLs it holds. */
function holding(crls: Partial<CrlRecord>[]): CrlPublisher {
  const base = { thisUpdate: new Date(0), nextUpdate: new Date(86_400_000), entries: 0 };
  return { cas: () => [], refresh: async () => {}, held: () => crls.map((c) => ({ ...base, ...c })), derOf: async (c: CrlRecord) => c.der,
    async *withDers(cs: CrlRecord[]) {
      for (const c of cs) yield [c, c.der];
    },
  } as unknown as CrlPublisher;
}

let tmp: string;
let umask: number;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-crl-files-'));
  umask = process.umask(0);
});
afterAll(() => {
  process.umask(umask);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const crls = [{ caId: 'issuing-1', scope: 'full', crlNumber: 7n, der: Buffer.from('0\x03\x02\x01\x07', 'latin1') }];

test('private by default (the data directory): files 0600, the directories it creates 0700, under umask 000', async () => {
  const out = path.join(tmp, 'data', 'crl');
  const [w] = await publishCrlFiles(holding(crls), out);
  expect([mode(path.join(tmp, 'data')), mode(out), mode(path.dirname(w!.derPath)), mode(w!.derPath), mode(w!.pemPath)]).toEqual(['700', '700', '700', '600', '600']);
  expect(fs.readFileSync(w!.derPath)).toEqual(crls[0]!.der);
});

test("access 'public' (a web server's directory): files 0644, directories 0755; a file that was private becomes public", async () => {
  const out = path.join(tmp, 'www');
  await publishCrlFiles(holding(crls), out);
  const [w] = await publishCrlFiles(holding(crls), out, { access: 'public' });
  expect([mode(path.dirname(w!.derPath)), mode(w!.derPath), mode(w!.pemPath)]).toEqual(['700', '644', '644']);
  const fresh = path.join(tmp, 'www2');
  const [v] = await publishCrlFiles(holding(crls), fresh, { access: 'public' });
  expect([mode(fresh), mode(path.dirname(v!.derPath)), mode(v!.derPath)]).toEqual(['755', '755', '644']);
});
