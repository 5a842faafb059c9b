/** CA records: a ceremony inserts one, never overwrites it. */
import type { CaRecord, CaRepository } from '../ca/ports.js';
import { buf, bytes, rethrowAs, type Db } from './client.js';

type Row = Awaited<ReturnType<Db['certificateAuthority']['findUniqueOrThrow']>>;
const toRecord = (r: Row): CaRecord => ({
  id: r.id,
  name: r.name,
  role: r.role as CaRecord['role'],
  state: r.state as CaRecord['state'],
  parentId: r.parentId,
  certDer: buf(r.certDer),
  subject: r.subject,
  skiHex: r.skiHex,
  keyRef: r.keyRef,
  notBefore: r.notBefore,
  notAfter: r.notAfter,
  createdAt: r.createdAt,
});

/** {@link CaRepository} over Prisma. */
export function caRepository(db: Db): CaRepository {
  return {
    async insert(ca) {
      try {
        await db.certificateAuthority.create({ data: { ...ca, certDer: bytes(ca.certDer) } });
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
    async setState(id, state) {
      try {
        await db.certificateAuthority.update({ where: { id }, data: { state } });
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
