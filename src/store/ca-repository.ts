import type { CaRecord, CaRepository } from '../ca/ports.js';
import { buf, conflictOr, type Db } from './client.js';

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

export function caRepository(db: Db): CaRepository {
  return {
    async insert(ca) {
      try {
        await db.certificateAuthority.create({ data: { ...ca, certDer: new Uint8Array(ca.certDer) } });
      } catch (err) {
        conflictOr(err, `a CA named "${ca.id}" already exists`);
      }
    },
    findById: async (id) => {
      const r = await db.certificateAuthority.findUnique({ where: { id } });
      return r && toRecord(r);
    },
    findByName: async (name) => {
      const r = await db.certificateAuthority.findUnique({ where: { name } });
      return r && toRecord(r);
    },
    list: async () => (await db.certificateAuthority.findMany({ orderBy: { id: 'asc' } })).map(toRecord),
    async setState(id, state) {
      await db.certificateAuthority.update({ where: { id }, data: { state } });
    },
  };
}
