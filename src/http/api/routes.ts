/** Every /api/v1 route, in the order the OpenAPI document lists them. */
import { acmeRoutes } from './acme.js';
import { auditRoutes } from './audit.js';
import { caRoutes } from './cas.js';
import { certificateRoutes } from './certificates.js';
import type { ApiDeps } from './deps.js';
import { deviceRoutes } from './devices.js';
import { miscRoutes } from './misc.js';
import { openApiDocument } from './openapi.js';
import { route, type ApiRoute } from './table.js';
import { tokenRoutes } from './tokens.js';
import { z } from 'zod';

/** The route table: every admin operation, then the public document describing them. */
export function apiRoutes(deps: ApiDeps): ApiRoute[] {
  const routes: ApiRoute[] = [
    ...miscRoutes(deps),
    ...certificateRoutes(deps),
    ...caRoutes(deps),
    ...deviceRoutes(deps),
    ...tokenRoutes(deps),
    ...acmeRoutes(deps),
    ...auditRoutes(deps),
  ];
  let document: Record<string, unknown> | undefined;
  routes.push(
    route({
      method: 'get',
      path: '/api/v1/openapi.json',
      id: 'openapi',
      tag: 'meta',
      roles: 'public',
      summary: 'This document (OpenAPI 3.1), generated from the route table.',
      query: z.object({}).strict(),
      response: { status: 200, description: 'the OpenAPI document', contentType: 'application/json' },
      async handler({ res }) {
        document ??= openApiDocument(routes, { version: '1' });
        res.json(document);
      },
    }),
  );
  return routes;
}
