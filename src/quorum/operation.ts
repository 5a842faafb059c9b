/**
 * What a quorum approves: an operation `{ op, params }`, written as canonical
 * JSON (object keys sorted by UTF-16 code units, no whitespace, numbers as
 * ECMAScript prints them: the JSON Canonicalization Scheme of RFC 8785 for
 * the values used here) and hashed with SHA-256. An approval is bound to that
 * hash, so changing one parameter needs new approvals.
 */
import { createHash } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';

/**
 * Operations that need a quorum when one is configured (issue 11, "Separation
 * of duties"). Restoring a backup is not one: the backup opens only with the
 * root secret, M of N shares once it is split (docs/ceremonies/quorum.md).
 */
export const quorumOperations = ['root-key.use', 'ca.create', 'ca.rotate', 'key.destroy', 'key.compromise'] as const;
/** One of {@link quorumOperations}. */
export type QuorumOperation = (typeof quorumOperations)[number];

/** Parameters of an operation: names to strings, as `--param k=v` gives them. */
export type OperationParams = Readonly<Record<string, string>>;

/** A JSON value {@link canonicalJson} accepts. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [k: string]: JsonValue };

/** RFC 8785-style canonical JSON of `value`; throws `malformed` for what JSON cannot say (NaN, undefined, a Date…). */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new PkiError('malformed', 'canonical JSON has no non-finite numbers');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const obj = value as { readonly [k: string]: JsonValue };
    return `{${Object.keys(obj)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k]!)}`)
      .join(',')}}`;
  }
  throw new PkiError('malformed', `canonical JSON cannot hold a ${typeof value === 'object' ? 'non-plain object' : typeof value}`);
}

/** True when `op` is one of {@link quorumOperations}. */
export const isQuorumOperation = (op: string): op is QuorumOperation => (quorumOperations as readonly string[]).includes(op);

/** The canonical text of an operation and its SHA-256 (lowercase hex), what requests store and approvals sign. */
export function operationOf(op: QuorumOperation, params: OperationParams): { operation: string; hash: string } {
  if (!isQuorumOperation(op)) throw new PkiError('malformed', `unknown quorum operation "${op}" (known: ${quorumOperations.join(', ')})`);
  for (const [k, v] of Object.entries(params)) {
    if (typeof v !== 'string') throw new PkiError('malformed', `quorum operation parameter "${k}" must be a string`);
  }
  const operation = canonicalJson({ op, params: { ...params } });
  return { operation, hash: sha256Hex(operation) };
}

/** SHA-256 of UTF-8 text, lowercase hex. */
export const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
