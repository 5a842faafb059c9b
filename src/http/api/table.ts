/**
 * The /api/v1 route table: every admin route is declared once, here, with
 * the roles it accepts, its query and body schemas and its answer. The
 * express routes ({@link mountRoutes}) and the OpenAPI document
 * (openapi.ts) are both generated from it; no /api/v1 route is registered
 * any other way.
 */
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { PkiError } from '../../errors/pki-error.js';
import type { Role } from '../../tokens/roles.js';
import { assertAllowed, type Principal } from '../auth.js';
import { invalidInput } from './input.js';

/** What a handler receives: parsed input only. */
export interface RouteInput<Q, B> {
  req: Request;
  res: Response;
  /** null only on a public route. */
  principal: Principal;
  params: Record<string, string>;
  query: Q;
  body: B;
}

/** One admin API operation. */
export interface ApiRoute<Q = unknown, B = unknown> {
  method: 'get' | 'post';
  /** OpenAPI style: /api/v1/certificates/{serial}. */
  path: string;
  /** The roles that may call it (never empty), or 'public' (no credential at all). */
  roles: readonly Role[] | 'public';
  /** OpenAPI operationId. */
  id: string;
  summary: string;
  tag: string;
  /** Path parameters: name → description. */
  params?: Record<string, string>;
  /** Strict: unknown query parameters are a 400. */
  query?: z.ZodType<Q>;
  /** Strict JSON body. */
  body?: z.ZodType<B>;
  /** The success answer. */
  response: { status: number; description: string; schema?: z.ZodType; contentType?: string };
  /** Other answers worth naming (problem documents). */
  errors?: Record<number, string>;
  handler: (input: RouteInput<Q, B>) => Promise<void>;
}

/** Declares a route with its query and body types inferred from the schemas. */
export function route<Q = undefined, B = undefined>(r: ApiRoute<Q, B>): ApiRoute {
  return r as unknown as ApiRoute;
}

/** /api/v1/certificates/{serial} → /api/v1/certificates/:serial. */
export const expressPath = (openApiPath: string): string => openApiPath.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');

/** Opaque list cursors: base64url of the key the next page starts after. */
export const cursors = {
  encode: (key: string): string => Buffer.from(key, 'utf8').toString('base64url'),
  /** The key inside a cursor; `malformed` naming `cursor` when it is not one of ours. */
  decode<T>(cursor: string, parse: (key: string) => T | undefined): T {
    const key = /^[A-Za-z0-9_-]{1,1024}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
    const v = key ? parse(key) : undefined;
    if (v === undefined) throw new PkiError('malformed', 'query parameter cursor: not a cursor of this list (pass the "next" of the previous page)');
    return v;
  },
};

/** `limit` and `cursor`, the paging parameters every list takes. */
export const paging = {
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).max(1024).optional(),
};

/**
 * The list envelope of `rows`, read with `limit: limit + 1`: one more than
 * asked says whether a next page exists, and the next cursor is the key of
 * the last row shown.
 */
export function pageOf<R, T>(rows: readonly R[], limit: number, item: (r: R) => T, keyOf: (last: R) => string): { items: T[]; next: string | null } {
  const shown = rows.slice(0, limit);
  return { items: shown.map(item), next: rows.length > limit ? cursors.encode(keyOf(shown.at(-1)!)) : null };
}

/** The list envelope every list answers with. */
export const listOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next: z.string().nullable().describe('cursor of the next page; null on the last') });

/** Mounts every route on `app`: authenticate, check the role, parse query and body, run the handler. */
export function mountRoutes(
  app: express.Express,
  routes: readonly ApiRoute[],
  deps: { authenticate: (req: Request) => Promise<Principal>; readJson: <T>(req: Request, res: Response, schema: z.ZodType<T>) => Promise<T> },
): void {
  for (const r of routes) {
    if (r.roles !== 'public' && r.roles.length === 0) throw new Error(`${r.method.toUpperCase()} ${r.path}: a route needs at least one role (or 'public')`);
    app[r.method](expressPath(r.path), async (req: Request, res: Response) => {
      // Step 1: who is calling, and may they? Before any input is read.
      const principal = r.roles === 'public' ? (null as unknown as Principal) : await deps.authenticate(req).catch((err: unknown) => {
        // RFC 6750 §3: a 401 names the scheme that would work.
        if (err instanceof PkiError && err.type === 'unauthorized') res.set('WWW-Authenticate', 'Bearer realm="trellis"');
        throw err;
      });
      if (r.roles !== 'public') {
        assertAllowed(principal, r.roles);
        // What a credential may read stays out of shared and browser caches.
        res.set('Cache-Control', 'no-store');
      }
      // Step 2: the input, parsed once against strict schemas.
      let query: unknown = undefined;
      if (r.query) {
        const q = r.query.safeParse(req.query);
        if (!q.success) throw invalidInput(q.error, 'query');
        query = q.data;
      } else if (Object.keys(req.query as object).length > 0) throw new PkiError('malformed', `query parameter ${Object.keys(req.query as object)[0]}: not expected here`);
      const body = r.body ? await deps.readJson(req, res, r.body) : undefined;
      const params = Object.fromEntries(Object.entries(req.params as Record<string, string>).map(([k, v]) => [k, String(v)]));
      await r.handler({ req, res, principal, params, query, body });
    });
  }
}
