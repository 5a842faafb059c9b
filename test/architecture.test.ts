import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';

// STYLE.md: only ca (and cmd, which wires) imports keys; only store imports
// Prisma; only cmd imports http; nothing imports cmd. ESLint enforces the same
// rules; this test keeps them true even if the lint config drifts.
const src = path.join(import.meta.dirname, '../src');
const files = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? (d.name === 'generated' ? [] : files(path.join(dir, d.name))) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : []));

test('module boundaries hold', () => {
  const violations: string[] = [];
  for (const file of files(src)) {
    const rel = path.relative(src, file);
    const top = rel.split(path.sep)[0]!;
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      const target = spec.startsWith('.') ? path.relative(src, path.resolve(path.dirname(file), spec)).split(path.sep)[0]! : spec;
      const typeOnly = /^import type /.test(m[0]);
      if (target === 'keys' && !['ca', 'cmd', 'keys'].includes(top) && !/keys\/(signing-key|ports)\.js$/.test(spec)) violations.push(`${rel} imports ${spec}`);
      if ((spec.startsWith('@prisma/') || target === 'generated') && top !== 'store') violations.push(`${rel} imports ${spec}`);
      if (target === 'http' && !['cmd', 'http'].includes(top) && !typeOnly) violations.push(`${rel} imports ${spec}`);
      if (target === 'cmd' && top !== 'cmd') violations.push(`${rel} imports ${spec}`);
    }
  }
  expect(violations).toEqual([]);
});

// Issue 11: the CA is the only holder of unlocked keys. Outside src/ca and
// src/keys nothing names a SigningKey or the functions that hand one out, and
// nothing opens or makes a key from a keystore (the CA's functions do:
// ca/unlock.ts, ca/held-keys.ts, ca/ceremony.ts); so every signature goes
// through the CertificateAuthority, which checks the key's state first.
test('only src/ca and src/keys reach a SigningKey', () => {
  const violations: string[] = [];
  const keyNames = /\b(SigningKey|NodeSigningKey|keyOf|issuerFrom|responderKeyOf)\b/;
  for (const file of files(src)) {
    const rel = path.relative(src, file);
    const top = rel.split(path.sep)[0]!;
    if (top === 'ca' || top === 'keys') continue;
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^import\s[^;]*?from\s*['"][^'"]+['"]/gms)) if (keyNames.test(m[0])) violations.push(`${rel}: ${m[0].replace(/\s+/g, ' ')}`);
    for (const m of text.matchAll(/\b[\w.]*(?:keystore|Keystore|keys\.online|keys\.offline|online|offline)\??\.(?:load|generate|copyTo|importPkcs8)\(/g)) violations.push(`${rel}: ${m[0]}`);
  }
  expect(violations).toEqual([]);
});

// `trellis-pki/verify` runs inside gateways: it and everything it imports stay
// clear of the store, Prisma, express and the CA (only pki, errors, node:, pkijs, asn1js).
test('src/verify pulls in nothing but pki parsing', () => {
  const seen = new Set<string>();
  const outside: string[] = [];
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*from\s*['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
        const top = path.relative(src, target).split(path.sep)[0]!;
        if (!['verify', 'pki', 'errors'].includes(top)) outside.push(`${path.relative(src, file)} imports ${spec}`);
        else visit(target);
      } else if (!spec.startsWith('node:') && !['pkijs', 'asn1js'].includes(spec)) outside.push(`${path.relative(src, file)} imports ${spec}`);
    }
  };
  visit(path.join(src, 'verify/index.ts'));
  expect(outside).toEqual([]);
});
