/**
 * The OpenAPI document and the routes match both ways: every route of the
 * table is in the document with the same roles, every operation of the
 * document is a route of the table, and every /api/v1 route express has is
 * in the document (so none was registered beside the table). The document is
 * OpenAPI 3.1 and every $ref in it resolves.
 */
import type express from 'express';
import { beforeAll, describe, expect, test } from 'vitest';
import type { RegistrationAuthority } from '../../ra/registration.js';
import type { RevocationAuthority } from '../../ra/revoke.js';
import { roles } from '../../tokens/roles.js';
import { createApp } from '../app.js';
import { frontHandler } from '../front.js';
import { listen } from '../listen.js';
import { systemClock } from '../../clock/clock.js';
import type { ApiDeps } from './deps.js';
import { openApiDocument } from './openapi.js';
import { apiRoutes } from './routes.js';
import type { ApiRoute } from './table.js';

type Json = Record<string, any>;
const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;

let app: express.Express;
let served: Json;
const table: ApiRoute[] = apiRoutes({} as ApiDeps);
const doc = openApiDocument(table, { version: '1' }) as Json;

beforeAll(async () => {
  app = createApp({
    ra: {} as RegistrationAuthority,
    revocation: {} as RevocationAuthority,
    revocationSeconds: { ocsp: 5, crl: 60 },
    tokens: { verify: async () => Promise.reject(new Error('no tokens here')) },
    log: () => {},
    bodyLimitBytes: 65536,
  });
  const server = await listen(frontHandler({ app, caCertificate: () => undefined, ready: () => true, log: () => {}, clock: systemClock }), { host: '127.0.0.1', port: 0 });
  try {
    const res = await fetch(`${server.url}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    served = (await res.json()) as Json;
  } finally {
    await server.close(0);
  }
});

/** Every operation of a document as "METHOD path" → operation. */
function operations(d: Json): Map<string, Json> {
  const out = new Map<string, Json>();
  for (const [p, item] of Object.entries(d.paths as Json)) {
    for (const m of methods) if (item[m]) out.set(`${m.toUpperCase()} ${p}`, item[m]);
  }
  return out;
}

describe('routes ↔ document', () => {
  test('the served document is the one generated from the table', () => {
    expect(served).toEqual(JSON.parse(JSON.stringify(doc)));
  });

  test('every table route is in the document with the same roles, and every operation is a table route', () => {
    const ops = operations(doc);
    for (const r of table) {
      const op = ops.get(`${r.method.toUpperCase()} ${r.path}`);
      expect(op, `${r.method} ${r.path}`).toBeDefined();
      expect(op!['x-trellis-roles']).toEqual(r.roles === 'public' ? [] : [...r.roles]);
      expect(op!.operationId).toBe(r.id);
    }
    const declared = new Set(table.map((r) => `${r.method.toUpperCase()} ${r.path}`));
    for (const key of ops.keys()) expect(declared.has(key), key).toBe(true);
    expect(ops.size).toBe(table.length);
  });

  test('every /api/v1 route registered in express is in the document', () => {
    const stack = (app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router.stack;
    const registered = stack.filter((l) => l.route && l.route.path.startsWith('/api/')).flatMap((l) => Object.keys(l.route!.methods).map((m) => `${m.toUpperCase()} ${l.route!.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`));
    expect(registered.length).toBe(table.length);
    const ops = operations(doc);
    for (const key of registered) expect(ops.has(key), key).toBe(true);
  });
});

describe('the document', () => {
  test('is OpenAPI 3.1 with bearer, cookie and mutualTLS security schemes', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['bearer', 'cookie', 'mutualTLS']);
    expect(doc.components.securitySchemes.cookie).toMatchObject({ type: 'apiKey', in: 'cookie', name: 'trellis_console' });
  });

  test('every operation has a unique id, roles from the four, responses with descriptions, and path parameters declared', () => {
    const ids = new Set<string>();
    for (const [key, op] of operations(doc)) {
      expect(ids.has(op.operationId), key).toBe(false);
      ids.add(op.operationId);
      for (const role of op['x-trellis-roles']) expect(roles).toContain(role);
      expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      for (const [status, res] of Object.entries(op.responses as Json)) {
        expect(status).toMatch(/^[1-5][0-9][0-9]$/);
        expect((res as Json).description, `${key} ${status}`).toEqual(expect.any(String));
      }
      const inPath = [...key.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = ((op.parameters ?? []) as Json[]).filter((p) => p.in === 'path').map((p) => p.name);
      expect(declared.sort()).toEqual(inPath.sort());
      if (op['x-trellis-roles'].length > 0) {
        expect(op.responses['401'], key).toBeDefined();
        expect(op.responses['403'], key).toBeDefined();
        const schemes = (op.security as Json[]).flatMap((s) => Object.keys(s)).sort();
        expect(schemes, key).toEqual(key.startsWith('GET ') ? ['bearer', 'cookie', 'mutualTLS'] : ['bearer', 'mutualTLS']);
      } else expect(op.security).toEqual([]);
    }
  });

  test('every $ref resolves inside the document', () => {
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref') refs.push(x as string);
          else walk(x);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      expect(ref, ref).toMatch(/^#\//);
      let at: unknown = doc;
      for (const part of ref.slice(2).split('/')) at = (at as Json | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      expect(at, ref).toBeTypeOf('object');
    }
  });

  test('the schemas the console relies on are components', () => {
    for (const name of ['CertificateSummary', 'CertificateDetail', 'Ca', 'CaDetail', 'Crl', 'Device', 'Token', 'AcmeAccount', 'AcmeOrder', 'AuditEvent', 'AuditVerification', 'IssuanceStats', 'Whoami', 'Problem']) {
      expect(doc.components.schemas[name], name).toBeDefined();
    }
    expect(doc.components.schemas.CertificateSummary.properties.status.enum).toEqual(['valid', 'revoked', 'expired', 'pending', 'failed']);
  });
});
