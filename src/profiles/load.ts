/**
 * Loads `ca-profiles/*.yaml` and fails closed: a bad file stops startup with a
 * `badProfile` error that names the file, the field path and, where the YAML
 * has one, the line ("ca-profiles/server.yaml: san.dns.patterns[0]: …").
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML, { isNode, LineCounter, type Document } from 'yaml';
import type { z } from 'zod';
import { PkiError } from '../errors/pki-error.js';
import { profileFileSchema } from './schema.js';
import type { Profile } from './types.js';

/** Profile names: the file name without `.yaml`/`.yml`, used in URLs and the database. */
export const profileNamePattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

const profileFile = /\.ya?ml$/;
// One message with every problem is kinder than fix-one-rerun, but a file
// that is wrong everywhere should not produce a wall of text.
const maxReported = 5;

/**
 * The `ca-profiles/` directory shipped with the package, resolved from this
 * module's location: `src/profiles/` under vitest and `dist/profiles/` after
 * the build both sit two levels below the package root.
 */
export function defaultProfilesDir(): string {
  return fileURLToPath(new URL('../../ca-profiles/', import.meta.url)).replace(/[\\/]$/, '');
}

/**
 * Parses and checks one profile from YAML text. `source` names the file in
 * errors (default `<name>.yaml`). Throws PkiError('badProfile') for a bad name,
 * bad YAML or a failed check. The returned profile is deeply frozen.
 */
export function parseProfile(name: string, yamlText: string, source = `${name}.yaml`): Profile {
  if (!profileNamePattern.test(name)) {
    throw new PkiError('badProfile', `${source}: profile name "${name}" must be 1-63 lower-case letters, digits and dashes, starting with a letter or digit`);
  }
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(yamlText, { lineCounter, uniqueKeys: true, prettyErrors: true });
  const yamlError = doc.errors[0];
  if (yamlError) throw new PkiError('badProfile', `${source}: not valid YAML: ${yamlError.message.split('\n')[0]}`, { cause: yamlError });
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // toJS throws for alias abuse (exponential expansion) and similar structural problems.
    throw new PkiError('badProfile', `${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new PkiError('badProfile', `${source}: expected a YAML mapping of profile settings (description, signer, keys, …)`);
  }
  // A key that is absent reads better as "is missing" than as "expected string, received undefined".
  const parsed = profileFileSchema.safeParse(raw, { error: (iss) => (iss.code === 'invalid_type' && iss.input === undefined ? 'is missing' : undefined) });
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) => describeIssue(issue, doc, lineCounter));
    const shown = problems.slice(0, maxReported).join('; ');
    const more = problems.length > maxReported ? `; and ${problems.length - maxReported} more` : '';
    throw new PkiError('badProfile', `${source}: ${shown}${more}`);
  }
  return deepFreeze({ name, ...parsed.data });
}

/** Reads and checks one profile file; the profile name is the file name without `.yaml`/`.yml`. */
export async function loadProfile(file: string): Promise<Profile> {
  const source = displayPath(file);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new PkiError('badProfile', `${source}: cannot read profile: ${(err as Error).message}`, { cause: err });
  }
  return parseProfile(path.basename(file).replace(profileFile, ''), text, source);
}

/**
 * Loads every `*.yaml` / `*.yml` file in `dir` into a map keyed by profile
 * name. Fails with PkiError('badProfile') when the directory cannot be read,
 * holds no profile, holds two files with the same name, or any file is bad
 * (all bad files are reported, one per line).
 */
export async function loadProfiles(dir: string): Promise<Map<string, Profile>> {
  let files: string[];
  try {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    files = entries.filter((e) => profileFile.test(e.name) && !e.isDirectory()).map((e) => e.name).sort();
  } catch (err) {
    throw new PkiError('badProfile', `cannot read profiles directory ${displayPath(dir)}: ${(err as Error).message}`, { cause: err });
  }
  if (files.length === 0) throw new PkiError('badProfile', `no profiles (*.yaml) in ${displayPath(dir)}`);

  const results = await Promise.allSettled(files.map((f) => loadProfile(path.join(dir, f))));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    const detail = failures.map((e) => (e instanceof Error ? e.message : String(e))).join('\n');
    throw new PkiError('badProfile', detail, { cause: failures[0] });
  }

  const profiles = new Map<string, Profile>();
  results.forEach((r, i) => {
    if (r.status !== 'fulfilled') return;
    if (profiles.has(r.value.name)) throw new PkiError('badProfile', `${displayPath(path.join(dir, files[i]!))}: profile "${r.value.name}" is defined twice (.yaml and .yml)`);
    profiles.set(r.value.name, r.value);
  });
  return profiles;
}

/** The profile called `name`; PkiError('notFound') when there is none. */
export function getProfile(profiles: ReadonlyMap<string, Profile>, name: string): Profile {
  const profile = profiles.get(name);
  if (!profile) throw new PkiError('notFound', `unknown profile "${name}"`);
  return profile;
}

/** One zod issue as "field.path[0]: message (line N)"; an unknown-keys issue becomes one entry per key. */
function describeIssue(issue: z.core.$ZodIssue, doc: Document, lines: LineCounter): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => describe([...issue.path, key], 'unknown key', doc, lines));
  }
  return [describe(issue.path, issue.message, doc, lines)];
}

function describe(at: readonly PropertyKey[], message: string, doc: Document, lines: LineCounter): string {
  const line = lineOf(doc, lines, at);
  return `${fieldPath(at)}: ${message}${line === undefined ? '' : ` (line ${line})`}`;
}

/** ["san", "dns", "patterns", 0] → "san.dns.patterns[0]". */
export function fieldPath(at: readonly PropertyKey[]): string {
  if (at.length === 0) return '(top level)';
  return at.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/** The line of the deepest node on `at` that exists in the file (a missing key points at its parent). */
function lineOf(doc: Document, lines: LineCounter, at: readonly PropertyKey[]): number | undefined {
  const keys = at.filter((p): p is string | number => typeof p === 'string' || typeof p === 'number');
  for (let n = keys.length; n > 0; n--) {
    const node = doc.getIn(keys.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Paths under the working directory print relative ("ca-profiles/server.yaml"), others absolute. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(file);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
