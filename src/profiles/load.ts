/** Loads ca-profiles/*.yaml, failing closed with the file and field named. */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { PkiError } from '../errors/pki-error.js';
import { profileYamlSchema, toProfile } from './schema.js';
import type { Profile } from './types.js';

const namePattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The profiles shipped with Trellis (works from src/ and from dist/). */
export function defaultProfilesDir(): string {
  return path.resolve(import.meta.dirname, '../../ca-profiles');
}

/** Loads and checks one profile file. */
export function loadProfile(file: string): Profile {
  const name = path.basename(file).replace(/\.ya?ml$/, '');
  const where = path.relative(process.cwd(), file) || file;
  if (!namePattern.test(name)) throw new PkiError('badProfile', `${where}: profile file name must be lower-case letters, digits and dashes`);
  let raw: unknown;
  try {
    const doc = YAML.parseDocument(fs.readFileSync(file, 'utf8'), { uniqueKeys: true });
    if (doc.errors.length) throw doc.errors[0];
    raw = doc.toJS();
  } catch (err) {
    throw new PkiError('badProfile', `${where}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const parsed = profileYamlSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    const field = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(top level)';
    const message = i.code === 'unrecognized_keys' ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message;
    throw new PkiError('badProfile', `${where}: ${field}: ${message}`);
  }
  return toProfile(name, parsed.data);
}

/** Loads every *.yaml / *.yml in `dir`. */
export async function loadProfiles(dir: string): Promise<Map<string, Profile>> {
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch (err) {
    throw new PkiError('badProfile', `cannot read profiles directory ${dir}`, { cause: err });
  }
  const out = new Map<string, Profile>();
  for (const f of files) {
    const p = loadProfile(path.join(dir, f));
    if (out.has(p.name)) throw new PkiError('badProfile', `${f}: profile "${p.name}" is defined twice`);
    out.set(p.name, p);
  }
  return out;
}

/** A profile by name, or notFound. */
export function getProfile(profiles: ReadonlyMap<string, Profile>, name: string): Profile {
  const p = profiles.get(name);
  if (!p) throw new PkiError('notFound', `unknown profile "${name}"`);
  return p;
}
