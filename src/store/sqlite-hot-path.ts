/**
 * The issuance hot path on SQLite, through better-sqlite3 prepared statements
 * instead of Prisma: Prisma's per-row query building cost ~0.5 ms per
 * certificate (measured), the prepared statements ~10 µs. Each batch runs in
 * one IMMEDIATE transaction, so it is atomic and serialised with every other
 * writer, in this process or another (the CLI beside the server, cluster workers).
 * Values are written exactly as Prisma writes them (DateTime as ISO text).
 */
import type Database from 'better-sqlite3';
import type { CertificateIntent } from '../ca/ports.js';
import type { AuditDraft, AuditRecord } from '../audit/ports.js';
import { PkiError } from '../errors/pki-error.js';

/** Prisma's SQLite DateTime text form. */
export const sqliteDate = (d: Date): string => d.toISOString().replace('Z', '+00:00');

export interface SqliteHotPath {
  insertIntents(intents: CertificateIntent[]): void;
  completeIssued(items: { issuerId: string; serialHex: string; der: Buffer; issuedAt: Date }[]): void;
  appendAudit(drafts: AuditDraft[], chain: (prevHash: string, seq: number, draft: AuditDraft, dataJson: string) => string): AuditRecord[];
}

export function sqliteHotPath(db: Database.Database): SqliteHotPath {
  const insert = db.prepare(`INSERT INTO "Certificate" ("issuerId","serialHex","profile","subject","sans","notBefore","notAfter","status","lintDer","crlShard","requestedVia","requestedBy","keyId","createdAt")
    VALUES (?,?,?,?,?,?,?,'pending',?,?,?,?,?,?)`);
  const complete = db.prepare(`UPDATE "Certificate" SET "status"='valid', "der"=?, "issuedAt"=? WHERE "issuerId"=? AND "serialHex"=? AND "status"='pending'`);
  const lastAudit = db.prepare(`SELECT "seq","hash" FROM "AuditEvent" ORDER BY "seq" DESC LIMIT 1`);
  const insertAudit = db.prepare(`INSERT INTO "AuditEvent" ("seq","at","type","actor","data","prevHash","hash") VALUES (?,?,?,?,?,?,?)`);

  const insertTx = db.transaction((intents: CertificateIntent[], now: string) => {
    for (const i of intents) {
      insert.run(i.issuerId, i.serialHex, i.profile, i.subject, i.sans, sqliteDate(i.notBefore), sqliteDate(i.notAfter), i.lintDer, i.crlShard, i.requestedVia, i.requestedBy, i.keyId ?? null, now);
    }
  });
  const completeTx = db.transaction((items: { issuerId: string; serialHex: string; der: Buffer; issuedAt: Date }[]) => {
    for (const i of items) {
      if (complete.run(i.der, sqliteDate(i.issuedAt), i.issuerId, i.serialHex).changes !== 1) throw new Error(`certificate ${i.serialHex} is not pending`);
    }
  });
  const auditTx = db.transaction((drafts: AuditDraft[], chain: Parameters<SqliteHotPath['appendAudit']>[1]) => {
    const last = lastAudit.get() as { seq: number; hash: string } | undefined;
    let prevHash = last?.hash ?? '0'.repeat(64);
    let seq = last?.seq ?? 0;
    return drafts.map((d) => {
      const data = JSON.stringify(d.data);
      seq += 1;
      const hash = chain(prevHash, seq, d, data);
      const row = { seq, at: d.at, type: d.type, actor: d.actor, data, prevHash, hash };
      insertAudit.run(seq, sqliteDate(d.at), d.type, d.actor, data, prevHash, hash);
      prevHash = hash;
      return row;
    });
  });

  return {
    insertIntents(intents) {
      try {
        insertTx.immediate(intents, sqliteDate(new Date(Date.now())));
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new PkiError('conflict', 'serial number already used by this issuer', { cause: err });
        throw err;
      }
    },
    completeIssued: (items) => completeTx.immediate(items),
    appendAudit: (drafts, chain) => auditTx.immediate(drafts, chain),
  };
}
