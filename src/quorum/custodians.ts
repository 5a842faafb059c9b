/**
 * The custodian registry: people whose approvals make up a quorum, each with
 * a credential of their own (passphrase or key). Every change is audited;
 * the audit data never holds a passphrase or its hash.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import { keyCredential, parseCredential, passphraseCredential, type Credential, type PassphraseKdf } from './credential.js';
import type { CustodianRepository, CustodianRow } from './ports.js';

/** Custodian names: a letter or digit, then letters, digits, `.`, `_`, `@`, `-`; at most 64. */
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** A custodian as the CLI shows it: never the credential's secret parts. */
export interface Custodian {
  name: string;
  /** `passphrase`, or the key's algorithm. */
  credential: 'passphrase' | 'ed25519' | 'ecdsa-p256';
  createdAt: Date;
  removedAt: Date | null;
}

/** What a new custodian proves themselves with. */
export type NewCredential = { passphrase: string } | { publicKeyPem: string };

export interface CustodianDeps {
  custodians: CustodianRepository;
  audit: Pick<AuditLog, 'record'>;
  clock: Clock;
  kdf: PassphraseKdf;
  randomBytes?: (size: number) => Buffer;
}

const kindOf = (c: Credential): Custodian['credential'] => (c.type === 'passphrase' ? 'passphrase' : c.algorithm);

/** Adds, lists and removes custodians. */
export class CustodianRegistry {
  readonly #d: CustodianDeps;
  constructor(deps: CustodianDeps) {
    this.#d = deps;
  }

  /** Registers a custodian; `conflict` when the name was ever used, `malformed` for a bad name. */
  async add(name: string, credential: NewCredential, actor: string): Promise<Custodian> {
    if (!namePattern.test(name)) throw new PkiError('malformed', `custodian name "${name}": a letter or digit, then letters, digits, ".", "_", "@" or "-" (at most 64)`);
    const existing = await this.#d.custodians.find(name);
    if (existing) throw new PkiError('conflict', existing.removedAt ? `custodian "${name}" was removed at ${existing.removedAt.toISOString()}; names are not reused` : `custodian "${name}" already exists`);
    const cred = 'passphrase' in credential ? await passphraseCredential(this.#d.kdf, credential.passphrase, (this.#d.randomBytes ?? nodeRandomBytes)(16)) : keyCredential(credential.publicKeyPem);
    const createdAt = this.#d.clock.now();
    await this.#d.custodians.insert({ name, credential: JSON.stringify(cred), createdAt });
    await this.#d.audit.record('custodian.added', actor, { name, credential: kindOf(cred) });
    return { name, credential: kindOf(cred), createdAt, removedAt: null };
  }

  /** Every custodian (removed ones with their removal time), oldest first. */
  async list(): Promise<Custodian[]> {
    return (await this.#d.custodians.list()).map(toCustodian);
  }

  /** The custodians whose approvals count now. */
  async active(): Promise<CustodianRow[]> {
    return (await this.#d.custodians.list()).filter((c) => c.removedAt === null);
  }

  /** Removes a custodian: their approvals stop counting; `notFound` for an unknown name. */
  async remove(name: string, actor: string): Promise<{ removed: boolean }> {
    const removed = await this.#d.custodians.remove(name, this.#d.clock.now());
    if (removed) await this.#d.audit.record('custodian.removed', actor, { name });
    return { removed };
  }
}

function toCustodian(r: CustodianRow): Custodian {
  return { name: r.name, credential: kindOf(parseCredential(r.name, r.credential)), createdAt: r.createdAt, removedAt: r.removedAt };
}
