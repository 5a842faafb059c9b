/** /api/v1/audit: the audit log (auditors and administrators): events, an NDJSON export, the chain's verification. */
import { z } from 'zod';
import type { AuditRecord } from '../../audit/ports.js';
import type { AuditFilter } from '../../store/admin-queries.js';
import { auditReaders } from '../../tokens/roles.js';
import type { ApiDeps } from './deps.js';
import { auditEventSchema, auditVerifySchema } from './schemas.js';
import { cursors, listOf, pageOf, paging, route, type ApiRoute } from './table.js';

const isoTime = z.iso.datetime({ offset: true }).transform((s) => new Date(s));
const filters = {
  type: z.string().min(1).max(128).optional(),
  actor: z.string().min(1).max(256).optional(),
  since: isoTime.optional(),
  until: isoTime.optional(),
};
const eventsQuery = z.object({ ...filters, ...paging }).strict();
const exportQuery = z.object(filters).strict();
type Filters = z.infer<typeof exportQuery>;

/** An event with its data parsed back into JSON. */
const eventJson = (e: AuditRecord) => ({ seq: e.seq, at: e.at.toISOString(), type: e.type, actor: e.actor, data: JSON.parse(e.data) as unknown, prevHash: e.prevHash, hash: e.hash });

const filterOf = (q: Filters): Omit<AuditFilter, 'limit'> => ({
  ...(q.type ? { type: q.type } : {}),
  ...(q.actor ? { actor: q.actor } : {}),
  ...(q.since ? { since: q.since } : {}),
  ...(q.until ? { until: q.until } : {}),
});

const seqKey = (k: string) => (/^(0|[1-9][0-9]{0,15})$/.test(k) ? Number(k) : undefined);

export function auditRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    route<z.infer<typeof eventsQuery>>({
      method: 'get',
      path: '/api/v1/audit/events',
      id: 'listAuditEvents',
      tag: 'audit',
      roles: auditReaders,
      summary: 'Audit events in seq order, by type, actor and time window [since, until).',
      query: eventsQuery,
      response: { status: 200, description: 'a page of events', schema: listOf(auditEventSchema) },
      async handler({ res, query }) {
        const afterSeq = query.cursor === undefined ? undefined : cursors.decode(query.cursor, seqKey);
        const rows = await deps.queries.auditEvents({ ...filterOf(query), ...(afterSeq !== undefined ? { afterSeq } : {}), limit: query.limit + 1 });
        res.json(pageOf(rows, query.limit, eventJson, (last) => String(last.seq)));
      },
    }),
    route<Filters>({
      method: 'get',
      path: '/api/v1/audit/events/export',
      id: 'exportAuditEvents',
      tag: 'audit',
      roles: auditReaders,
      summary: 'Every matching audit event, one JSON object per line (NDJSON), streamed in seq order.',
      query: exportQuery,
      response: { status: 200, description: 'NDJSON, one event per line', contentType: 'application/x-ndjson' },
      async handler({ req, res, query }) {
        res.status(200).type('application/x-ndjson').set('Cache-Control', 'no-store');
        const filter = filterOf(query);
        let afterSeq: number | undefined;
        for (;;) {
          const page = await deps.queries.auditEvents({ ...filter, ...(afterSeq !== undefined ? { afterSeq } : {}), limit: 1000 });
          if (page.length === 0 || req.destroyed) break;
          const chunk = page.map((e) => `${JSON.stringify(eventJson(e))}\n`).join('');
          // Respect backpressure: a slow reader holds one page in memory, not the log.
          if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve).once('close', resolve));
          afterSeq = page.at(-1)!.seq;
          if (page.length < 1000) break;
        }
        res.end();
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/audit/verify',
      id: 'verifyAudit',
      tag: 'audit',
      roles: auditReaders,
      summary: 'Verifies the hash chain and the signed checkpoints (as trellis audit verify does).',
      query: z.object({}).strict(),
      response: { status: 200, description: 'the verification; ok false names the first bad event', schema: auditVerifySchema },
      async handler({ res }) {
        const r = await deps.verifyAudit();
        const latest = r.checkpoints.latest;
        const firstBadSeq = r.first?.seq ?? r.findings.find((f) => f.seq !== null)?.seq ?? null;
        res.json({
          ok: r.ok,
          events: r.events,
          headHash: r.head,
          ...(latest ? { checkpoint: { by: latest.by, events: latest.events, time: latest.time.toISOString() } } : {}),
          ...(firstBadSeq !== null ? { firstBadSeq } : {}),
          findings: r.findings.map((f) => ({ seq: f.seq, change: f.change, by: f.by, detail: f.detail })),
        });
      },
    }),
  ];
}

