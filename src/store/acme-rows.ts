/**
 * ACME rows ↔ records: the JSON columns (contact, identifiers, authorization
 * ids, problems, challenges) and the two shapes a row arrives in, from Prisma
 * (Date, boolean) or from a better-sqlite3 prepared statement (DateTime as
 * text, Boolean as 0/1). Both paths share these mappers, so a row written
 * either way reads back identically.
 */
import type {
  AccountStatus,
  AcmeAccountRecord,
  AcmeAuthorizationRecord,
  AcmeChallenge,
  AcmeOrderRecord,
  AuthorizationStatus,
  Identifier,
  StoredOrderStatus,
  StoredProblem,
} from '../ra/acme/ports.js';
import type { Db } from './client.js';
import { sqliteDateOf, sqliteDateOrNull } from './sqlite-date.js';

/** An AcmeAccount row as Prisma returns it. */
export type AccountRow = Awaited<ReturnType<Db['acmeAccount']['findUniqueOrThrow']>>;
/** An AcmeOrder row as Prisma returns it. */
export type OrderRow = Awaited<ReturnType<Db['acmeOrder']['findUniqueOrThrow']>>;
/** An AcmeAuthorization row as Prisma returns it. */
export type AuthorizationRow = Awaited<ReturnType<Db['acmeAuthorization']['findUniqueOrThrow']>>;

/** A row as better-sqlite3 returns it: DateTime columns are text, Boolean columns 0/1. */
export type SqliteRow<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] extends boolean ? number : T[K] };

// ---- JSON columns -----------------------------------------------------------

/** A challenge as stored inside the authorization row (`validated` as ISO text). */
interface StoredChallenge {
  type: AcmeChallenge['type'];
  token: string;
  status: AcmeChallenge['status'];
  validated: string | null;
  error: StoredProblem | null;
  attestedSpki?: string;
}

/** The `challenges` column text of `challenges`. */
export const challengesJson = (challenges: readonly AcmeChallenge[]): string =>
  JSON.stringify(challenges.map((c): StoredChallenge => ({ type: c.type, token: c.token, status: c.status, validated: c.validated?.toISOString() ?? null, error: c.error, ...(c.attestedSpki ? { attestedSpki: c.attestedSpki } : {}) })));

const challengesOf = (text: string): AcmeChallenge[] =>
  (JSON.parse(text) as StoredChallenge[]).map((c) => ({ type: c.type, token: c.token, status: c.status, validated: c.validated === null ? null : new Date(c.validated), error: c.error, ...(c.attestedSpki ? { attestedSpki: c.attestedSpki } : {}) }));

/** The `error` column text of a problem (null stays null). */
export const problemJson = (p: StoredProblem | null): string | null => (p === null ? null : JSON.stringify(p));
const problemOf = (text: string | null): StoredProblem | null => (text === null ? null : (JSON.parse(text) as StoredProblem));

// ---- records ----------------------------------------------------------------

/** The columns of an account record. */
export const accountColumns = (a: AcmeAccountRecord): AccountRow => ({
  id: a.id,
  thumbprint: a.thumbprint,
  jwk: a.jwk,
  status: a.status,
  contact: JSON.stringify(a.contact),
  termsAgreed: a.termsAgreed,
  eabKeyId: a.eabKeyId,
  createdAt: a.createdAt,
});

/** The account record of a row. */
export const toAccount = (r: AccountRow): AcmeAccountRecord => ({
  id: r.id,
  thumbprint: r.thumbprint,
  jwk: r.jwk,
  status: r.status as AccountStatus,
  contact: JSON.parse(r.contact) as string[],
  termsAgreed: r.termsAgreed,
  eabKeyId: r.eabKeyId,
  createdAt: r.createdAt,
});

/** The columns of an order record. */
export const orderColumns = (o: AcmeOrderRecord): OrderRow => ({
  id: o.id,
  accountId: o.accountId,
  profile: o.profile,
  status: o.status,
  expires: o.expires,
  identifiers: JSON.stringify(o.identifiers.map((i) => ({ type: i.type, value: i.value }))),
  authorizationIds: JSON.stringify(o.authorizationIds),
  notBefore: o.notBefore,
  notAfter: o.notAfter,
  error: problemJson(o.error),
  issuerId: o.issuerId,
  certificateSerial: o.certificateSerial,
  replaces: o.replaces,
  createdAt: o.createdAt,
});

/** The order record of a row. */
export const toOrder = (r: OrderRow): AcmeOrderRecord => ({
  id: r.id,
  accountId: r.accountId,
  profile: r.profile,
  status: r.status as StoredOrderStatus,
  expires: r.expires,
  identifiers: JSON.parse(r.identifiers) as Identifier[],
  authorizationIds: JSON.parse(r.authorizationIds) as string[],
  notBefore: r.notBefore,
  notAfter: r.notAfter,
  error: problemOf(r.error),
  issuerId: r.issuerId,
  certificateSerial: r.certificateSerial,
  replaces: r.replaces,
  createdAt: r.createdAt,
});

/** The columns of an authorization record (the identifier split in two, challenges as JSON). */
export const authorizationColumns = (a: AcmeAuthorizationRecord): AuthorizationRow => ({
  id: a.id,
  accountId: a.accountId,
  identifierType: a.identifier.type,
  identifierValue: a.identifier.value,
  wildcard: a.wildcard,
  status: a.status,
  expires: a.expires,
  challenges: challengesJson(a.challenges),
  createdAt: a.createdAt,
});

/** The authorization record of a row. */
export const toAuthorization = (r: AuthorizationRow): AcmeAuthorizationRecord => ({
  id: r.id,
  accountId: r.accountId,
  identifier: { type: r.identifierType as Identifier['type'], value: r.identifierValue },
  wildcard: r.wildcard,
  status: r.status as AuthorizationStatus,
  expires: r.expires,
  challenges: challengesOf(r.challenges),
  createdAt: r.createdAt,
});

/** `rows` in the order of `ids`, leaving out ids without a row. */
export function inIdOrder<T extends { id: string }>(ids: readonly string[], rows: T[]): T[] {
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

// ---- better-sqlite3 rows ----------------------------------------------------

/** An account row read by a prepared statement, in Prisma's shape. */
export const accountFromSqlite = (r: SqliteRow<AccountRow>): AccountRow => ({ ...r, termsAgreed: r.termsAgreed !== 0, createdAt: sqliteDateOf(r.createdAt) });

/** An order row read by a prepared statement, in Prisma's shape. */
export const orderFromSqlite = (r: SqliteRow<OrderRow>): OrderRow => ({
  ...r,
  expires: sqliteDateOf(r.expires),
  notBefore: sqliteDateOrNull(r.notBefore),
  notAfter: sqliteDateOrNull(r.notAfter),
  createdAt: sqliteDateOf(r.createdAt),
});

/** An authorization row read by a prepared statement, in Prisma's shape. */
export const authorizationFromSqlite = (r: SqliteRow<AuthorizationRow>): AuthorizationRow => ({ ...r, wildcard: r.wildcard !== 0, expires: sqliteDateOf(r.expires), createdAt: sqliteDateOf(r.createdAt) });
