/**
 * The OpenAPI 3.1 document of /api/v1, generated from the route table:
 * each operation carries the roles it accepts as `x-trellis-roles`. Schemas
 * named with `.meta({ id })` become components; everything else is inline.
 */
import { z } from 'zod';
import { roleDescriptions, roles } from '../../tokens/roles.js';
import { consoleCookie } from '../auth.js';
import { problemSchema } from './schemas.js';
import type { ApiRoute } from './table.js';

type Json = Record<string, unknown>;

/** A JSON Schema (2020-12, as OpenAPI 3.1 uses) for `schema`, its named parts moved to `components`. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output', components: Record<string, Json>): Json {
  const out = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
  delete out.$schema;
  const defs = (out.$defs ?? {}) as Record<string, Json>;
  delete out.$defs;
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' ? x.replace(/^#\/\$defs\//, '#/components/schemas/') : rewrite(x)]));
    }
    return v;
  };
  for (const [name, def] of Object.entries(defs)) components[name] = rewrite(def) as Json;
  // A named schema at the top: a component, and a reference to it here.
  const id = z.globalRegistry.get(schema)?.id;
  if (typeof id === 'string' && !out.$ref) {
    components[id] = rewrite(out) as Json;
    return { $ref: `#/components/schemas/${id}` };
  }
  return rewrite(out) as Json;
}

const problem = (description: string, components: Record<string, Json>) => ({
  description,
  content: { 'application/problem+json': { schema: jsonSchema(problemSchema, 'output', components) } },
});

/** The document for `routes` (the public route serving it included). */
export function openApiDocument(routes: readonly ApiRoute[], info: { version: string }): Json {
  const components: Record<string, Json> = {};
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const parameters: Json[] = [];
    for (const name of r.path.match(/\{([A-Za-z0-9_]+)\}/g) ?? []) {
      const n = name.slice(1, -1);
      parameters.push({ name: n, in: 'path', required: true, description: r.params?.[n] ?? n, schema: { type: 'string' } });
    }
    if (r.query) {
      const shape = (r.query as unknown as z.ZodObject).shape as Record<string, z.ZodType>;
      for (const [name, field] of Object.entries(shape)) {
        const optional = field.safeParse(undefined).success;
        parameters.push({ name, in: 'query', required: !optional, schema: jsonSchema(field, 'input', components) });
      }
    }
    const content = r.response.schema
      ? { [r.response.contentType ?? 'application/json']: { schema: jsonSchema(r.response.schema, 'output', components) } }
      : r.response.contentType
        ? { [r.response.contentType]: {} }
        : { 'application/json': {} };
    const responses: Record<string, Json> = { [String(r.response.status)]: { description: r.response.description, content } };
    if (r.query || r.body) responses['400'] = problem('bad input: the problem names the parameter', components);
    if (r.roles !== 'public') {
      responses['401'] = problem('no credential, or a wrong one', components);
      responses['403'] = problem(`the credential's role is not one of: ${r.roles.join(', ')}`, components);
    }
    for (const [status, description] of Object.entries(r.errors ?? {})) responses[status] ??= problem(description, components);
    const operation: Json = {
      operationId: r.id,
      summary: r.summary,
      tags: [r.tag],
      'x-trellis-roles': r.roles === 'public' ? [] : [...r.roles],
      // The console cookie is honoured for reads only (auth.ts).
      security: r.roles === 'public' ? [] : r.method === 'get' ? [{ bearer: [] }, { cookie: [] }, { mutualTLS: [] }] : [{ bearer: [] }, { mutualTLS: [] }],
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body, 'input', components) } } } } : {}),
      responses,
    };
    (paths[r.path] ??= {})[r.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Trellis admin API',
      version: info.version,
      description: `Roles: ${roles.map((r) => `${r} (${roleDescriptions[r]})`).join('; ')}. The aliases admin and issuer name administrator and enrollment.`,
    },
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API token: trellis token create --role ROLE' },
        cookie: { type: 'apiKey', in: 'cookie', name: consoleCookie, description: 'the console session (a token secret); GET and HEAD only' },
        mutualTLS: { type: 'mutualTLS', description: 'a client certificate of the operator profile; its OU is the role' },
      },
    },
  };
}
