/** /api/v1/acme: ACME accounts and orders (read only; an account shows its key's thumbprint, never the key). */
import { z } from 'zod';
import type { AcmeAccountRecord, AcmeOrderRecord } from '../../ra/acme/ports.js';
import { readers } from '../../tokens/roles.js';
import type { ApiDeps } from './deps.js';
import { acmeAccountSchema, acmeOrderSchema } from './schemas.js';
import { cursors, listOf, pageOf, paging, route, type ApiRoute } from './table.js';

const orderStatuses = ['pending', 'processing', 'valid', 'invalid'] as const;
const ordersQuery = z
  .object({
    status: z.enum(orderStatuses).optional(),
    account: z.string().min(1).max(128).optional(),
    ...paging,
  })
  .strict();

const accountJson = (a: AcmeAccountRecord): z.infer<typeof acmeAccountSchema> => ({
  id: a.id,
  thumbprint: a.thumbprint,
  status: a.status,
  contact: a.contact,
  termsAgreed: a.termsAgreed,
  eabKeyId: a.eabKeyId,
  createdAt: a.createdAt.toISOString(),
});

const iso = (d: Date | null) => d?.toISOString() ?? null;
const orderJson = (o: AcmeOrderRecord): z.infer<typeof acmeOrderSchema> => ({
  id: o.id,
  account: o.accountId,
  profile: o.profile,
  status: o.status,
  identifiers: o.identifiers.map((i) => ({ type: i.type, value: i.value })),
  expires: o.expires.toISOString(),
  notBefore: iso(o.notBefore),
  notAfter: iso(o.notAfter),
  error: o.error,
  ca: o.issuerId,
  certificateSerial: o.certificateSerial,
  replaces: o.replaces,
  createdAt: o.createdAt.toISOString(),
});

/** An order cursor: the createdAt (ms) and id of the last order shown. */
const orderKey = (k: string): { createdAt: Date; id: string } | undefined => {
  const m = /^([0-9]{1,15}) (.{1,128})$/.exec(k);
  return m ? { createdAt: new Date(Number(m[1])), id: m[2]! } : undefined;
};

export function acmeRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    route<{ limit: number; cursor?: string }>({
      method: 'get',
      path: '/api/v1/acme/accounts',
      id: 'listAcmeAccounts',
      tag: 'acme',
      roles: readers,
      summary: 'ACME accounts by id (the account key appears only as its RFC 7638 thumbprint).',
      query: z.object(paging).strict(),
      response: { status: 200, description: 'a page of accounts', schema: listOf(acmeAccountSchema) },
      async handler({ res, query }) {
        const afterId = query.cursor === undefined ? undefined : cursors.decode(query.cursor, (k) => (k.length <= 128 ? k : undefined));
        const rows = await deps.queries.acmeAccounts({ ...(afterId !== undefined ? { afterId } : {}), limit: query.limit + 1 });
        res.json(pageOf(rows, query.limit, accountJson, (last) => last.id));
      },
    }),
    route<z.infer<typeof ordersQuery>>({
      method: 'get',
      path: '/api/v1/acme/orders',
      id: 'listAcmeOrders',
      tag: 'acme',
      roles: readers,
      summary: 'ACME orders, newest first, by stored status and account.',
      query: ordersQuery,
      response: { status: 200, description: 'a page of orders', schema: listOf(acmeOrderSchema) },
      async handler({ res, query }) {
        const before = query.cursor === undefined ? undefined : cursors.decode(query.cursor, orderKey);
        const rows = await deps.queries.acmeOrders({
          ...(query.status ? { status: query.status } : {}),
          ...(query.account ? { accountId: query.account } : {}),
          ...(before ? { before } : {}),
          limit: query.limit + 1,
        });
        res.json(pageOf(rows, query.limit, orderJson, (last) => `${last.createdAt.getTime()} ${last.id}`));
      },
    }),
  ];
}
