/** /api/v1/whoami and /api/v1/stats/issuance. */
import { z } from 'zod';
import { anyRole, readers } from '../../tokens/roles.js';
import type { ApiDeps } from './deps.js';
import { issuanceStatsSchema, whoamiSchema } from './schemas.js';
import { route, type ApiRoute } from './table.js';

const dayMs = 86_400_000;
const statsQuery = z.object({ days: z.coerce.number().int().min(1).max(366).default(30) }).strict();

export function miscRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    route({
      method: 'get',
      path: '/api/v1/whoami',
      id: 'whoami',
      tag: 'session',
      roles: anyRole,
      summary: 'The caller: its id, role and how it authenticated.',
      query: z.object({}).strict(),
      response: { status: 200, description: 'the caller', schema: whoamiSchema },
      async handler({ res, principal }) {
        res.set('Cache-Control', 'no-store').json({ id: principal.id, role: principal.role, via: principal.via });
      },
    }),
    route<z.infer<typeof statsQuery>>({
      method: 'get',
      path: '/api/v1/stats/issuance',
      id: 'issuanceStats',
      tag: 'stats',
      roles: readers,
      summary: 'Certificates issued and revoked per UTC day over the last `days` days (today included), oldest first.',
      query: statsQuery,
      response: { status: 200, description: 'one entry per day, zeros included', schema: issuanceStatsSchema },
      async handler({ res, query }) {
        const now = deps.clock.now().getTime();
        const today = now - (now % dayMs);
        const since = new Date(today - (query.days - 1) * dayMs);
        const counts = new Map((await deps.queries.issuancePerDay(since)).map((d) => [d.day, d]));
        const days = Array.from({ length: query.days }, (_, i) => {
          const day = new Date(since.getTime() + i * dayMs).toISOString().slice(0, 10);
          const c = counts.get(day);
          return { day, issued: c?.issued ?? 0, revoked: c?.revoked ?? 0 };
        });
        res.json({ days });
      },
    }),
  ];
}
