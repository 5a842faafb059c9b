import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { errorTypes } from '../src/errors/pki-error.js';

test('docs/errors.md lists every ErrorType', () => {
  const doc = fs.readFileSync(path.join(import.meta.dirname, '../docs/errors.md'), 'utf8');
  const listed = new Set([...doc.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]));
  expect([...errorTypes].filter((t) => !listed.has(t))).toEqual([]);
  expect([...listed].filter((t) => !(errorTypes as readonly string[]).includes(t!))).toEqual([]);
});
