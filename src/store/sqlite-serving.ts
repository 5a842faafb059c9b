/**
 * What a serving process reads and writes on SQLite besides the hot path,
 * at start and on its timers (key states, CA watch, OCSP and CRL polls, the
 * CRL lease and publisher, the audit checkpointer, pre-signed OCSP answers,
 * API token use, instance secrets), through better-sqlite3 prepared
 * statements on the hot path's connection. With these, a `serve` worker
 * that issues, answers OCSP and serves ACME never makes a Prisma query, so
 * Prisma's client and query compiler are never loaded in it (open.ts makes
 * the client on first use). Values are read and written as Prisma does
 * (DateTime as ISO text, BIGINT as bigint where it may exceed 2^53).
 */
import type Database from 'better-sqlite3';
import type { AuditCheckpointRecord, AuditCheckpointRepository } from '../audit/checkpoint-ports.js';
import type { CaRepository, CertificateRepository } from '../ca/ports.js';
import type { CrlRecord, CrlRepository } from '../crl/ports.js';
import type { KeyBlobRepository } from '../keys/ports.js';
import type { OcspResponseRepository } from '../ocsp/ports.js';
import type { AcmeOrderRepository } from '../ra/acme/ports.js';
import type { TokenRepository } from '../tokens/ports.js';
import { orderFromSqlite, toOrder, type OrderRow, type SqliteRow } from './acme-rows.js';
import { caRecordOf, keyStateOf, type CaSqliteRow } from './ca-repository.js';
import { fromSqliteRow } from './certificate-rows.js';
import { mergeStatusChanges } from './certificate-repository.js';
import { checkHolder, holderSpan, leaseKey, leaseValue } from './crl-repository.js';
import type { SecretRows } from './instance-secret-repository.js';
import { mapSqliteConstraint, withWriteLock } from './sqlite-hot-path.js';
import { sqliteDate, sqliteDateOf } from './sqlite-date.js';
import type { SerialQueue } from './sqlite-serial.js';
import type { WalSync } from './wal-sync.js';

/** The repository methods a serving SQLite process runs here instead of through Prisma. */
export interface SqliteServing {
  cas: Pick<CaRepository, 'list' | 'keyStates'>;
  keyBlobs: Pick<KeyBlobRepository, 'find' | 'insert'>;
  crls: Pick<CrlRepository, 'nextCrlNumber' | 'latestAll' | 'acquireLease' | 'releaseLease' | 'prune'>;
  certificates: Pick<CertificateRepository, 'latestHeld' | 'statusChangedSince'>;
  auditCheckpoints: Pick<AuditCheckpointRepository, 'addAfter' | 'latest'>;
  ocspResponses: Pick<OcspResponseRepository, 'get' | 'putMany'>;
  tokens: Pick<TokenRepository, 'touch'>;
  acmeOrders: Pick<AcmeOrderRepository, 'listProcessing'>;
  secrets: SecretRows;
  /** The HMAC key column of every EAB key (to see whether any is still stored in clear). */
  eabKeys(): Promise<Buffer[]>;
}

type CheckpointRow = Omit<AuditCheckpointRecord, 'at'> & { at: string };
const checkpointOf = (r: CheckpointRow): AuditCheckpointRecord => ({ ...r, at: sqliteDateOf(r.at) });

function prepare(db: Database.Database) {
  const checkpointColumns = `SELECT "id","eventCount","headHash","at","body","signature","signerSerialHex" FROM "AuditCheckpoint"`;
  return {
    caList: db.prepare(`SELECT * FROM "CertificateAuthority" ORDER BY "id"`),
    caKeyStates: db.prepare(`SELECT "id","keyState" FROM "CertificateAuthority" ORDER BY "id"`),
    keyBlobInsert: db.prepare(`INSERT INTO "KeyBlob" ("id","algorithm","envelope","createdAt") VALUES (?,?,?,?)`),
    keyBlob: db.prepare(`SELECT "id","algorithm","envelope","state","createdAt" FROM "KeyBlob" WHERE "id"=?`),
    // BIGINT columns as bigint (CRL numbers and the lease's value may exceed 2^53).
    nextCrlNumber: db.prepare(`INSERT INTO "CrlSequence" ("caId","last") VALUES (?,1) ON CONFLICT ("caId") DO UPDATE SET "last"="CrlSequence"."last"+1 RETURNING "last"`).safeIntegers(true),
    crlLatestAll: db
      .prepare(`SELECT "caId","scope","crlNumber","baseCrlNumber","thisUpdate","nextUpdate","entries" FROM "Crl" c WHERE "caId"=?
        AND "crlNumber"=(SELECT MAX("crlNumber") FROM "Crl" WHERE "caId"=c."caId" AND "scope"=c."scope") ORDER BY "crlNumber" DESC`)
      .safeIntegers(true),
    crlScopes: db.prepare(`SELECT DISTINCT "scope" FROM "Crl" WHERE "caId"=?`),
    crlPrune: db.prepare(`DELETE FROM "Crl" WHERE "id" IN (SELECT "id" FROM "Crl" WHERE "caId"=? AND "scope"=? ORDER BY "crlNumber" DESC LIMIT -1 OFFSET ?)`),
    acquireLease: db
      .prepare(`INSERT INTO "CrlSequence" ("caId","last") VALUES (?,?) ON CONFLICT ("caId") DO UPDATE SET "last"=excluded."last"
        WHERE "CrlSequence"."last"/? <= ? OR "CrlSequence"."last"%? = ? RETURNING "last"`)
      .safeIntegers(true),
    releaseLease: db.prepare(`UPDATE "CrlSequence" SET "last"=0 WHERE "caId"=? AND "last"%?=?`).safeIntegers(true),
    latestHeld: db.prepare(`SELECT * FROM "Certificate" WHERE "issuerId"=? AND "profile"=? AND "status"='valid' AND "keyId" IS NOT NULL ORDER BY "notAfter" DESC LIMIT 1`),
    revokedAfter: db.prepare(`SELECT "issuerId","serialHex","revokedAt" AS "at" FROM "Certificate" WHERE "revokedAt">? ORDER BY "revokedAt" LIMIT ?`),
    releasedAfter: db.prepare(`SELECT "issuerId","serialHex","holdReleasedAt" AS "at" FROM "Certificate" WHERE "holdReleasedAt">? ORDER BY "holdReleasedAt" LIMIT ?`),
    revokedAt: db.prepare(`SELECT "issuerId","serialHex" FROM "Certificate" WHERE "revokedAt"=?`),
    releasedAt: db.prepare(`SELECT "issuerId","serialHex" FROM "Certificate" WHERE "holdReleasedAt"=?`),
    checkpointLatest: db.prepare(`${checkpointColumns} ORDER BY "eventCount" DESC, "id" DESC LIMIT 1`),
    checkpointInsert: db.prepare(`INSERT INTO "AuditCheckpoint" ("eventCount","headHash","at","body","signature","signerSerialHex")
      SELECT ?,?,?,?,?,? WHERE COALESCE((SELECT MAX("eventCount") FROM "AuditCheckpoint"),0)=?`),
    checkpointById: db.prepare(`${checkpointColumns} WHERE "id"=?`),
    ocspGet: db.prepare(`SELECT "issuerId","serialHex","der","thisUpdate","nextUpdate" FROM "OcspResponse" WHERE "issuerId"=? AND "serialHex"=?`),
    ocspPut: db.prepare(`INSERT INTO "OcspResponse" ("issuerId","serialHex","der","thisUpdate","nextUpdate") VALUES (?,?,?,?,?)
      ON CONFLICT ("issuerId","serialHex") DO UPDATE SET "der"=excluded."der","thisUpdate"=excluded."thisUpdate","nextUpdate"=excluded."nextUpdate"`),
    tokenTouch: db.prepare(`UPDATE "ApiToken" SET "lastUsedAt"=? WHERE "id"=? AND ("lastUsedAt" IS NULL OR "lastUsedAt"<=?)`),
    listProcessing: db.prepare(`SELECT * FROM "AcmeOrder" WHERE "status"='processing' AND "createdAt"<? ORDER BY "createdAt","id" LIMIT ?`),
    secret: db.prepare(`SELECT "value" FROM "InstanceSecret" WHERE "name"=?`),
    secrets: db.prepare(`SELECT "name","value" FROM "InstanceSecret"`),
    secretInsert: db.prepare(`INSERT INTO "InstanceSecret" ("name","value") VALUES (?,?) ON CONFLICT ("name") DO NOTHING`),
    secretReplace: db.prepare(`UPDATE "InstanceSecret" SET "value"=? WHERE "name"=? AND "value"=?`),
    eabKeys: db.prepare(`SELECT "hmacKey" FROM "AcmeEabKey"`).pluck(),
  };
}

/** Builds {@link SqliteServing} on the hot path's connection (busy_timeout 0) and the Prisma connection's queue. */
export function sqliteServing(db: Database.Database, queue: SerialQueue, wal?: WalSync): SqliteServing {
  // Prepared on first use, like the hot path's: a store opened on an older database must open to migrate itself.
  let prepared: ReturnType<typeof prepare> | undefined;
  const stmts = () => (prepared ??= prepare(db));
  const read = <T>(fn: (s: ReturnType<typeof prepare>) => T): Promise<T> => queue.run(() => fn(stmts()));
  // A write resolves once its commit is on disk (wal-sync.ts), as every write of the store does.
  const write = <T>(fn: (s: ReturnType<typeof prepare>) => T): Promise<T> => {
    const commit = queue.run(() => withWriteLock(() => fn(stmts())));
    return wal ? wal.after(commit) : commit;
  };
  type ChangeRow = { issuerId: string; serialHex: string; at: string };
  const changes = (rows: unknown[]) => (rows as ChangeRow[]).map((r) => ({ issuerId: r.issuerId, serialHex: r.serialHex, at: sqliteDateOf(r.at) }));
  return {
    cas: {
      list: () => read((s) => (s.caList.all() as CaSqliteRow[]).map(caRecordOf)),
      keyStates: () => read((s) => (s.caKeyStates.all() as { id: string; keyState: string }[]).map((r) => ({ id: r.id, keyState: keyStateOf(r.keyState, r.id) }))),
    },
    keyBlobs: {
      // Serve's first start on a new instance creates the secret sealing key (keys/software-keystore.ts).
      async insert(blob) {
        try {
          await write((s) => s.keyBlobInsert.run(blob.id, blob.algorithm, blob.envelope, sqliteDate(new Date(Date.now()))));
        } catch (err) {
          throw mapSqliteConstraint(err, `key "${blob.id}" already exists; keys are never overwritten`);
        }
      },
      find: (id) =>
        read((s) => {
          const r = s.keyBlob.get(id) as { id: string; algorithm: string; envelope: string; state: string; createdAt: string } | undefined;
          return r ? { ...r, createdAt: sqliteDateOf(r.createdAt) } : null;
        }),
    },
    crls: {
      nextCrlNumber: (caId) => write((s) => (s.nextCrlNumber.get(caId) as { last: bigint }).last),
      latestAll: (caId) =>
        read((s) =>
          (s.crlLatestAll.all(caId) as { caId: string; scope: string; crlNumber: bigint; baseCrlNumber: bigint | null; thisUpdate: string; nextUpdate: string; entries: bigint }[]).map(
            (r): Omit<CrlRecord, 'der'> => ({ ...r, thisUpdate: sqliteDateOf(r.thisUpdate), nextUpdate: sqliteDateOf(r.nextUpdate), entries: Number(r.entries) }),
          ),
        ),
      async acquireLease(caId, holder, now, until) {
        checkHolder(holder);
        const value = leaseValue(holder, until);
        return write((s) => s.acquireLease.all(leaseKey(caId), value, holderSpan, BigInt(now.getTime()), holderSpan, BigInt(holder)).length === 1);
      },
      async releaseLease(caId, holder) {
        checkHolder(holder);
        await write((s) => s.releaseLease.run(leaseKey(caId), holderSpan, BigInt(holder)));
      },
      async prune(caId, keep) {
        const scopes = await read((s) => s.crlScopes.all(caId) as { scope: string }[]);
        let deleted = 0;
        for (const { scope } of scopes) deleted += await write((s) => s.crlPrune.run(caId, scope, keep).changes);
        return deleted;
      },
    },
    certificates: {
      latestHeld: (issuerId, profile) =>
        read((s) => {
          const r = s.latestHeld.get(issuerId, profile) as Parameters<typeof fromSqliteRow>[0] | undefined;
          return r ? fromSqliteRow(r) : null;
        }),
      statusChangedSince: (since, limit) =>
        mergeStatusChanges(limit, {
          revokedAfter: () => read((s) => changes(s.revokedAfter.all(sqliteDate(since), limit))),
          releasedAfter: () => read((s) => changes(s.releasedAfter.all(sqliteDate(since), limit))),
          at: (at) => read((s) => [...s.revokedAt.all(sqliteDate(at)), ...s.releasedAt.all(sqliteDate(at))] as { issuerId: string; serialHex: string }[]),
        }),
    },
    auditCheckpoints: {
      async addAfter(baseEvents, cp) {
        const inserted = await write((s) => s.checkpointInsert.run(cp.eventCount, cp.headHash, sqliteDate(cp.at), cp.body, cp.signature, cp.signerSerialHex, baseEvents));
        if (inserted.changes !== 1) return null;
        return read((s) => {
          const r = s.checkpointById.get(inserted.lastInsertRowid) as CheckpointRow | undefined;
          return r ? checkpointOf(r) : null;
        });
      },
      latest: () =>
        read((s) => {
          const r = s.checkpointLatest.get() as CheckpointRow | undefined;
          return r ? checkpointOf(r) : null;
        }),
    },
    ocspResponses: {
      get: (issuerId, serialHex) =>
        read((s) => {
          const r = s.ocspGet.get(issuerId, serialHex) as { issuerId: string; serialHex: string; der: Buffer; thisUpdate: string; nextUpdate: string } | undefined;
          return r ? { ...r, thisUpdate: sqliteDateOf(r.thisUpdate), nextUpdate: sqliteDateOf(r.nextUpdate) } : null;
        }),
      async putMany(responses) {
        // One transaction per 32, as through Prisma: other queries of the process run between them.
        for (let at = 0; at < responses.length; at += 32) {
          const chunk = responses.slice(at, at + 32);
          await write((s) =>
            db.transaction(() => {
              for (const r of chunk) s.ocspPut.run(r.issuerId, r.serialHex, r.der, sqliteDate(r.thisUpdate), sqliteDate(r.nextUpdate));
            }).immediate(),
          );
        }
      },
    },
    tokens: {
      async touch(id, at, unlessAfter) {
        await write((s) => s.tokenTouch.run(sqliteDate(at), id, sqliteDate(unlessAfter)));
      },
    },
    acmeOrders: {
      listProcessing: (createdBefore, limit) => read((s) => (s.listProcessing.all(sqliteDate(createdBefore), limit) as SqliteRow<OrderRow>[]).map((r) => toOrder(orderFromSqlite(r)))),
    },
    secrets: {
      find: (name) => read((s) => (s.secret.get(name) as { value: Buffer } | undefined)?.value ?? null),
      all: () => read((s) => s.secrets.all() as { name: string; value: Buffer }[]),
      insertIfAbsent: async (name, value) => {
        await write((s) => s.secretInsert.run(name, value));
      },
      replace: (name, sealed, clear) => write((s) => s.secretReplace.run(sealed, name, clear).changes === 1),
    },
    eabKeys: () => read((s) => s.eabKeys.all() as Buffer[]),
  };
}
