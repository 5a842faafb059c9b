/** CA records: a ceremony inserts one, never overwrites it. */
import { isKeyState, keyStates, type KeyState } from '../ca/key-state.js';
import type { CaRecord, CaRepository } from '../ca/ports.js';
import { buf, bytes, rethrowAs, type Db } from './client.js';
import { sqliteDateOf, sqliteDateOrNull } from './sqlite-date.js';

export function keyStateOf(s: string, id: string): KeyState {
  if (!isKeyState(s)) throw new Error(`CA ${id}: stored key state "${s}" is not one of ${keyStates.join(', ')}`);
  return s;
}

type Row = Awaited<ReturnType<Db['certificateAuthority']['findUniqueOrThrow']>>;
const toRecord = (r: Omit<Row, 'updatedAt'>): CaRecord => ({
  id: r.id,
  name: r.name,
  role: r.role as CaRecord['role'],
  keyState: keyStateOf(r.keyState, r.id),
  keyStateAt: r.keyStateAt,
  parentId: r.parentId,
  certDer: buf(r.certDer),
  subject: r.subject,
  skiHex: r.skiHex,
  keyRef: r.keyRef,
  notBefore: r.notBefore,
  notAfter: r.notAfter,
  createdAt: r.createdAt,
});

/** A CertificateAuthority row as better-sqlite3 reads it (DateTime columns as ISO text). */
export type CaSqliteRow = Omit<Row, 'keyStateAt' | 'notBefore' | 'notAfter' | 'createdAt' | 'updatedAt'> & { keyStateAt: string | null; notBefore: string; notAfter: string; createdAt: string };
/** A CA record from a row read with better-sqlite3 (sqlite-serving.ts). */
export const caRecordOf = (r: CaSqliteRow): CaRecord =>
  toRecord({ ...r, keyStateAt: sqliteDateOrNull(r.keyStateAt), notBefore: sqliteDateOf(r.notBefore), notAfter: sqliteDateOf(r.notAfter), createdAt: sqliteDateOf(r.createdAt) });

/** {@link CaRepository} over Prisma. */
export function caRepository(db: Db): CaRepository {
  return {
    async insert(ca) {
      try {
        const { id, name, role, parentId, certDer, subject, skiHex, keyRef, notBefore, notAfter, keyState } = ca;
        await db.certificateAuthority.create({ data: { id, name, role, parentId, certDer: bytes(certDer), subject, skiHex, keyRef, notBefore, notAfter, ...(keyState ? { keyState } : {}) } });
      } catch (err) {
        rethrowAs(err, { conflict: `a CA with id "${ca.id}" or name "${ca.name}" already exists` });
      }
    },
    async findById(id) {
      const r = await db.certificateAuthority.findUnique({ where: { id } });
      return r && toRecord(r);
    },
    async findByName(name) {
      const r = await db.certificateAuthority.findUnique({ where: { name } });
      return r && toRecord(r);
    },
    list: async () => (await db.certificateAuthority.findMany({ orderBy: { id: 'asc' } })).map(toRecord),
    async transitionKey(id, from, to, event) {
      return db.$transaction(async (tx) => {
        const { count } = await tx.certificateAuthority.updateMany({ where: { id, keyState: from }, data: { keyState: to, keyStateAt: event.at } });
        if (count !== 1) return false;
        await tx.keyStateEvent.create({ data: { caId: id, from, to, at: event.at, actor: event.actor, reason: event.reason ?? null } });
        return true;
      });
    },
    keyStates: async () => (await db.certificateAuthority.findMany({ select: { id: true, keyState: true }, orderBy: { id: 'asc' } })).map((r) => ({ id: r.id, keyState: keyStateOf(r.keyState, r.id) })),
    keyHistory: async (id) =>
      (await db.keyStateEvent.findMany({ where: { caId: id }, orderBy: { id: 'asc' } })).map((r) => ({
        caId: r.caId,
        from: r.from === null ? null : keyStateOf(r.from, r.caId),
        to: keyStateOf(r.to, r.caId),
        at: r.at,
        actor: r.actor,
        reason: r.reason,
      })),
    async setCertificate(id, cert) {
      try {
        await db.certificateAuthority.update({ where: { id }, data: { certDer: bytes(cert.certDer), parentId: cert.parentId, notBefore: cert.notBefore, notAfter: cert.notAfter } });
      } catch (err) {
        rethrowAs(err, { notFound: `no CA "${id}"` });
      }
    },
    async setKeyRef(id, keyRef) {
      try {
        await db.certificateAuthority.update({ where: { id }, data: { keyRef } });
      } catch (err) {
        rethrowAs(err, { notFound: `no CA "${id}"` });
      }
    },
  };
}
