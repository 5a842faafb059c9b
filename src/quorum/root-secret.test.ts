/** Share files and rootSecretFromShares: header checks before combining, and the secret back from any M files. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { rootSecretFromShares, splitRootSecret } from './root-secret.js';
import { parseShareFile, shareFileText } from './share-file.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-shares-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const at = new Date('2026-12-06T08:00:00Z');

async function writeSplit(name: string, passphrase: string, n: number, m: number): Promise<string[]> {
  return (await splitRootSecret(passphrase, n, m, at)).map((s) => {
    const file = path.join(dir, `${name}-${s.index}.json`);
    fs.writeFileSync(file, shareFileText(s), { mode: 0o600 });
    return file;
  });
}

describe('rootSecretFromShares', () => {
  test('any M of N files give the passphrase back (UTF-8 included)', async () => {
    const pass = 'racine de confiance — hors ligne';
    const files = await writeSplit('a', pass, 4, 3);
    expect(await rootSecretFromShares([files[3]!, files[0]!, files[2]!])).toBe(pass);
    expect(await rootSecretFromShares(files)).toBe(pass);
    const parsed = parseShareFile(fs.readFileSync(files[1]!, 'utf8'), files[1]!);
    expect(parsed).toMatchObject({ index: 2, shares: 4, threshold: 3, createdAt: at.toISOString() });
  });

  test('rejects, naming the files: M-1 shares, two splits mixed, a share twice, an altered file, a readable file', async () => {
    const a = await writeSplit('b', 'first root passphrase', 3, 2);
    const b = await writeSplit('c', 'first root passphrase', 3, 2);
    await expect(rootSecretFromShares([a[0]!])).rejects.toThrow('the root secret needs 2 of its 3 shares; 1 given');
    await expect(rootSecretFromShares([a[0]!, b[1]!])).rejects.toThrow(`${b[1]} and ${a[0]} come from different splits of the root secret`);
    await expect(rootSecretFromShares([a[0]!, a[0]!])).rejects.toThrow(`share 1 is given twice (${a[0]}, ${a[0]})`);
    const json = JSON.parse(fs.readFileSync(a[1]!, 'utf8'));
    const altered = path.join(dir, 'altered.json');
    fs.writeFileSync(altered, JSON.stringify({ ...json, threshold: 3 }), { mode: 0o600 });
    await expect(rootSecretFromShares([a[0]!, altered])).rejects.toThrow(`${altered}: checksum does not match`);
    const flipped = Buffer.from(json.share, 'base64');
    flipped[0]! ^= 1;
    const forged = path.join(dir, 'forged.json');
    fs.writeFileSync(forged, shareFileText({ ...parseShareFile(JSON.stringify(json), 'x'), share: flipped }), { mode: 0o600 });
    await expect(rootSecretFromShares([a[0]!, forged])).rejects.toThrow(/do not reconstruct the secret/);
    fs.chmodSync(a[2]!, 0o644);
    await expect(rootSecretFromShares([a[0]!, a[2]!])).rejects.toThrow(/accessible by group or others/);
    await expect(rootSecretFromShares([a[0]!, path.join(dir, 'missing.json')])).rejects.toThrow(/cannot read share file/);
  });
});
