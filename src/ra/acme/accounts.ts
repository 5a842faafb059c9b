/**
 * ACME accounts (RFC 8555 §7.3): creation (with external account binding
 * when a directory requires it), lookup, contact updates, deactivation and
 * key rollover. Keys arrive already verified by the front end's JWS checks.
 */
import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock/clock.js';
import { PkiError } from '../../errors/pki-error.js';
import type { AcmeAccountRecord, AcmeAccountRepository, AcmeEabKeyRecord, AcmeEabKeyRepository } from './ports.js';
import type { RateLimiter } from './rate-limit.js';

/** A public account key as the JWS layer verified it. */
export interface AccountKey {
  thumbprint: string;
  /** Canonical public JWK JSON (RFC 7638 members only). */
  jwk: string;
}

export interface NewAccountInput {
  key: AccountKey;
  /** The directory (profile) the request came through. */
  directory: string;
  contact?: string[] | undefined;
  termsOfServiceAgreed?: boolean | undefined;
  onlyReturnExisting?: boolean | undefined;
  /** EAB key id whose binding the front end verified, if one was sent. */
  eabKeyId?: string | undefined;
  address: string;
}

const maxContacts = 10;

/**
 * RFC 8555 §7.3: contacts are URLs; this server supports `mailto:` with one
 * address and no header fields (RFC 6068 hfields), as Boulder does.
 */
export function checkContacts(contact: readonly string[]): string[] {
  if (contact.length > maxContacts) throw new PkiError('invalidContact', `at most ${maxContacts} contacts`);
  return contact.map((c) => {
    const m = /^mailto:([^@\s,?&%]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$/.exec(c);
    if (!m) throw new PkiError('invalidContact', `contact "${c.slice(0, 100)}" is not a mailto: URL with one address and no header fields`);
    return `mailto:${m[1]}`;
  });
}

export class AcmeAccounts {
  constructor(
    private readonly deps: {
      accounts: AcmeAccountRepository;
      eabKeys: AcmeEabKeyRepository;
      audit: AuditLog;
      clock: Clock;
      requiresEab: (directory: string) => boolean;
      termsOfService: string | undefined;
      newAccountsPerAddress: RateLimiter;
    },
  ) {}

  /** The HMAC key of an unbound EAB key id usable in `directory`; `externalAccountRequired` otherwise. */
  async eabKey(keyId: string, directory: string): Promise<Buffer> {
    const k = await this.deps.eabKeys.find(keyId);
    if (!k || !eabFits(k, directory)) throw new PkiError('externalAccountRequired', `unknown external account key id "${keyId.slice(0, 64)}" for this directory`);
    if (k.boundAccountId) throw new PkiError('unauthorized', 'that external account key was already used to create an account');
    return k.hmacKey;
  }

  /** newAccount: the existing account of this key, or a new one. */
  async newAccount(input: NewAccountInput): Promise<{ account: AcmeAccountRecord; created: boolean }> {
    const existing = await this.deps.accounts.findByThumbprint(input.key.thumbprint);
    if (existing) {
      if (existing.status !== 'valid') throw new PkiError('unauthorized', `the account of this key is ${existing.status}`);
      return { account: existing, created: false };
    }
    if (input.onlyReturnExisting) throw new PkiError('accountDoesNotExist', 'no account exists for this key');
    if (this.deps.termsOfService && input.termsOfServiceAgreed !== true) throw new PkiError('malformed', `agree to the terms of service (${this.deps.termsOfService}) with "termsOfServiceAgreed": true`);
    if (this.deps.requiresEab(input.directory) && !input.eabKeyId) throw new PkiError('externalAccountRequired', 'this directory requires an external account binding (externalAccountBinding)');
    const contact = checkContacts(input.contact ?? []);
    this.deps.newAccountsPerAddress.check(input.address);
    const now = this.deps.clock.now();
    const account: AcmeAccountRecord = {
      id: randomBytes(12).toString('base64url'),
      thumbprint: input.key.thumbprint,
      jwk: input.key.jwk,
      status: 'valid',
      contact,
      termsAgreed: input.termsOfServiceAgreed === true,
      eabKeyId: input.eabKeyId ?? null,
      createdAt: now,
    };
    // The binding is claimed first, so one EAB key can never create two accounts.
    if (input.eabKeyId && !(await this.deps.eabKeys.bind(input.eabKeyId, account.id, now))) {
      throw new PkiError('unauthorized', 'that external account key was already used to create an account');
    }
    const r = await this.deps.accounts.createOrGet(account);
    if (r.created) {
      this.deps.newAccountsPerAddress.hit(input.address);
      await this.deps.audit.record('acme.account_created', `acme:${account.id}`, { account: account.id, thumbprint: account.thumbprint, eabKeyId: account.eabKeyId, contacts: contact.length });
    }
    return r;
  }

  /** The account behind a `kid`; `accountDoesNotExist` or `unauthorized` (deactivated, revoked). */
  async byId(id: string): Promise<AcmeAccountRecord> {
    const a = await this.deps.accounts.findById(id);
    if (!a) throw new PkiError('accountDoesNotExist', 'no account at that URL');
    // RFC 8555 §7.3.6: a deactivated account's key authorizes nothing more.
    if (a.status !== 'valid') throw new PkiError('unauthorized', `account is ${a.status}`);
    return a;
  }

  /** Account update (RFC 8555 §7.3.2) and deactivation (§7.3.6). */
  async update(account: AcmeAccountRecord, patch: { contact?: string[] | undefined; status?: 'deactivated' | undefined }): Promise<AcmeAccountRecord> {
    const next = await this.deps.accounts.update(account.id, {
      ...(patch.contact ? { contact: checkContacts(patch.contact) } : {}),
      ...(patch.status ? { status: patch.status } : {}),
    });
    if (!next) throw new PkiError('unauthorized', 'account is no longer valid');
    if (patch.status) await this.deps.audit.record('acme.account_deactivated', `acme:${account.id}`, { account: account.id });
    return next;
  }

  /** Key rollover (RFC 8555 §7.3.5); `conflict` carries the other account's id when the new key is taken. */
  async changeKey(account: AcmeAccountRecord, oldKeyThumbprint: string, next: AccountKey): Promise<AcmeAccountRecord> {
    if (oldKeyThumbprint !== account.thumbprint) throw new PkiError('unauthorized', '"oldKey" is not the current key of the account');
    const taken = await this.deps.accounts.findByThumbprint(next.thumbprint);
    if (taken) throw new PkiError('conflict', 'the new key already belongs to an account', { extra: { accountId: taken.id } });
    const r = await this.deps.accounts.changeKey(account.id, account.thumbprint, next);
    if (r === 'conflict') throw new PkiError('conflict', 'the new key already belongs to an account');
    if (r === 'notFound') throw new PkiError('unauthorized', 'the account key changed meanwhile');
    await this.deps.audit.record('acme.account_key_changed', `acme:${account.id}`, { account: account.id, from: account.thumbprint, to: next.thumbprint });
    return (await this.deps.accounts.findById(account.id))!;
  }

  /** `trellis acme eab create`: a new key id and HMAC key (returned once). */
  async createEab(directory: string | null, actor: string): Promise<{ keyId: string; hmacKey: Buffer }> {
    const keyId = `kid-${randomBytes(12).toString('base64url')}`;
    const hmacKey = randomBytes(32);
    await this.deps.eabKeys.create({ keyId, hmacKey, directory, createdAt: this.deps.clock.now() });
    await this.deps.audit.record('acme.eab_created', actor, { keyId, directory });
    return { keyId, hmacKey };
  }
}

/** An EAB key made for one directory works only there; one made without works everywhere. */
export function eabFits(k: Pick<AcmeEabKeyRecord, 'directory'>, directory: string): boolean {
  return k.directory === null || k.directory === directory;
}
