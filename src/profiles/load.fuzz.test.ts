/**
 * Profile YAML under hostile input (issue 12): the shipped profiles, damaged
 * as text or with a value swapped for any JSON value at any path, give a
 * profile or a `badProfile` PkiError naming the file, never another error.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import YAML from 'yaml';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { fuzzParams } from '../pki/testing/mutate.js';
import { defaultProfilesDir, parseProfile } from './load.js';

const runs = fuzzParams(0x9a11, 150);
const dir = defaultProfilesDir();
const seeds = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));

/** parseProfile, with a badProfile PkiError counted as a clean refusal; anything else escapes. */
function load(text: string): void {
  try {
    parseProfile('fuzz', text);
  } catch (err) {
    if (!isPkiError(err, 'badProfile')) throw err;
    expect(err.message.startsWith('fuzz.yaml: ')).toBe(true);
  }
}

/** Text damage: a slice cut, or YAML-significant characters put in. */
const textDamage = fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.nat(), fc.nat({ max: 40 }), fc.string({ unit: fc.constantFrom(...' :-&*!|>?#[]{}",\'\t\n\\%@`0xé'.split('')), maxLength: 12 }))
  .map(([i, at, cut, insert]) => {
    const s = seeds[i]!;
    const p = at % (s.length + 1);
    return s.slice(0, p) + insert + s.slice(p + cut);
  });

/** Every path to a value in a parsed document. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(v)) return [at, ...v.flatMap((x, i) => paths(x, [...at, i]))];
  if (v && typeof v === 'object') return [at, ...Object.entries(v).flatMap(([k, x]) => paths(x, [...at, k]))];
  return [at];
}

/** Value damage: one value anywhere in a shipped profile replaced by any JSON value (or removed). */
const valueDamage = fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.nat(), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)))
  .map(([i, n, replacement]) => {
    const doc = YAML.parse(seeds[i]!) as Record<string, unknown>;
    const all = paths(doc).filter((p) => p.length > 0);
    const at = all[n % all.length]!;
    let parent: any = doc;
    for (const k of at.slice(0, -1)) parent = parent[k];
    if (replacement === undefined) delete parent[at[at.length - 1]!];
    else parent[at[at.length - 1]!] = replacement;
    return YAML.stringify(doc);
  });

describe('profile YAML under hostile input', () => {
  test('the shipped profiles load', () => {
    expect(seeds.length).toBeGreaterThanOrEqual(7);
    for (const text of seeds) expect(parseProfile('fuzz', text).name).toBe('fuzz');
  });

  test('text damage: a profile or a badProfile PkiError naming the file', () => {
    fc.assert(fc.property(textDamage, load), runs);
  });

  test('any JSON value at any path: a profile or a badProfile PkiError naming the file', () => {
    fc.assert(fc.property(valueDamage, load), runs);
  });

  test('any text: a badProfile PkiError or a profile, never another error', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), load), runs);
  });

  test('rejects: an alias bomb (billion laughs) as badProfile, without expanding it', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    expect(() => parseProfile('fuzz', levels.join('\n'))).toThrow(expect.objectContaining({ type: 'badProfile' }));
  });
});
