/** /api/v1/cas and /api/v1/crls: the CAs, their keys' history, and CRL freshness (read only). */
import { z } from 'zod';
import type { CaRecord } from '../../ca/ports.js';
import { PkiError } from '../../errors/pki-error.js';
import { toPem } from '../../pki/pem.js';
import { readers } from '../../tokens/roles.js';
import type { ApiDeps } from './deps.js';
import { caDetailSchema, caSchema, crlSchema } from './schemas.js';
import { listOf, route, type ApiRoute } from './table.js';

/** A CA as the API shows it; `active`: it would issue now. */
function caSummary(c: CaRecord, now: Date): z.infer<typeof caSchema> {
  const t = now.getTime();
  return {
    id: c.id,
    name: c.name,
    role: c.role,
    parentId: c.parentId,
    subject: c.subject,
    keyState: c.keyState,
    keyStateAt: c.keyStateAt?.toISOString() ?? null,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    skiHex: c.skiHex,
    active: c.role === 'issuing' && c.keyState === 'active' && c.notBefore.getTime() <= t && t < c.notAfter.getTime(),
  };
}

// Few rows (a handful of CAs, a CRL per CA and scope): one page, no cursor.
const noQuery = z.object({}).strict();

export function caRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    route({
      method: 'get',
      path: '/api/v1/cas',
      id: 'listCas',
      tag: 'cas',
      roles: readers,
      summary: 'The CAs of this instance with their key state and validity (one page).',
      query: noQuery,
      response: { status: 200, description: 'every CA', schema: listOf(caSchema) },
      async handler({ res }) {
        const now = deps.clock.now();
        const cas = (await deps.cas.list()).sort((a, b) => a.id.localeCompare(b.id));
        res.json({ items: cas.map((c) => caSummary(c, now)), next: null });
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/cas/{id}',
      id: 'getCa',
      tag: 'cas',
      roles: readers,
      summary: 'One CA with its certificate and the history of its key states.',
      params: { id: 'CA id' },
      query: noQuery,
      response: { status: 200, description: 'the CA', schema: caDetailSchema },
      errors: { 404: 'no such CA' },
      async handler({ res, params }) {
        const id = params.id!;
        const ca = id.length <= 64 ? await deps.cas.findById(id) : null;
        if (!ca) throw new PkiError('notFound', `no CA "${id.slice(0, 64)}"`);
        const events = await deps.cas.keyHistory(ca.id);
        res.json({
          ...caSummary(ca, deps.clock.now()),
          pem: toPem('CERTIFICATE', ca.certDer),
          keyEvents: events.map((e) => ({ from: e.from, to: e.to, at: e.at.toISOString(), actor: e.actor, reason: e.reason })),
        });
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/crls',
      id: 'listCrls',
      tag: 'cas',
      roles: readers,
      summary: 'The latest CRL of every CA and scope, and whether it is fresh (nextUpdate still ahead).',
      query: noQuery,
      response: { status: 200, description: 'the latest CRLs', schema: listOf(crlSchema) },
      async handler({ res }) {
        const now = deps.clock.now().getTime();
        const crls = await deps.queries.latestCrls();
        res.json({
          items: crls.map((c) => ({
            ca: c.caId,
            scope: c.scope,
            crlNumber: Number(c.crlNumber),
            thisUpdate: c.thisUpdate.toISOString(),
            nextUpdate: c.nextUpdate.toISOString(),
            entries: c.entries,
            fresh: c.nextUpdate.getTime() > now,
          })),
          next: null,
        });
      },
    }),
  ];
}
