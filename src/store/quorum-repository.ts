/** Quorum requests and approvals (issue 11) over Prisma, both flavours. */
import type { QuorumRepository } from '../quorum/ports.js';
import { rethrowAs, type Db } from './client.js';

/** {@link QuorumRepository} over Prisma. */
export function quorumRepository(db: Db): QuorumRepository {
  return {
    async insertRequest(row) {
      try {
        await db.quorumRequest.create({ data: { ...row, usedAt: null } });
      } catch (err) {
        rethrowAs(err, { conflict: `quorum request "${row.id}" already exists` });
      }
    },
    async find(id) {
      const r = await db.quorumRequest.findUnique({ where: { id }, include: { approvals: { orderBy: [{ approvedAt: 'asc' }, { custodian: 'asc' }] } } });
      if (!r) return null;
      return { ...r, approvals: r.approvals.map(({ custodian, approvedAt, signature }) => ({ custodian, approvedAt, signature })) };
    },
    async insertApproval(requestId, a) {
      try {
        await db.quorumApproval.create({ data: { requestId, ...a } });
      } catch (err) {
        rethrowAs(err, { conflict: `custodian "${a.custodian}" already approved request ${requestId}`, notFound: `no quorum request "${requestId}"` });
      }
    },
    async markUsed(id, at) {
      // Compare-and-set in one statement: of two runs racing for one request, one gets count 1.
      const { count } = await db.quorumRequest.updateMany({ where: { id, usedAt: null, expiresAt: { gt: at } }, data: { usedAt: at } });
      return count === 1;
    },
  };
}
