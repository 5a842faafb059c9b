/** /api/v1/devices: the device registry (issue 10). Officers and administrators change it; auditors read it. */
import { z } from 'zod';
import { PkiError } from '../../errors/pki-error.js';
import type { DeviceRegistry, DeviceView } from '../../ra/devices/registry.js';
import { operators, readers } from '../../tokens/roles.js';
import type { ApiDeps } from './deps.js';
import { deviceSchema } from './schemas.js';
import { cursors, listOf, pageOf, paging, route, type ApiRoute } from './table.js';

const listQuery = z
  .object({
    status: z.enum(['registered', 'active', 'disabled', 'retired']).optional(),
    ...paging,
  })
  .strict();

const deviceBody = z
  .object({
    id: z.string().min(1).max(256),
    profile: z.string().min(1).max(64).optional(),
    attributes: z.record(z.string().max(64), z.string().max(1024)).optional(),
    reprovision: z.enum(['never', 'reset', 'migrate']).optional(),
  })
  .strict();

const deviceJson = (d: DeviceView) => ({ ...d, createdAt: d.createdAt.toISOString(), updatedAt: d.updatedAt.toISOString() });
const idParam = { id: 'device id' };

export function deviceRoutes(deps: ApiDeps): ApiRoute[] {
  const registry = (): DeviceRegistry => {
    if (!deps.devices) throw new PkiError('notFound', 'this server has no device registry');
    return deps.devices;
  };
  const transitions = (['disable', 'enable', 'retire'] as const).map((op) =>
    route({
      method: 'post',
      path: `/api/v1/devices/{id}/${op}`,
      id: `${op}Device`,
      tag: 'devices',
      roles: operators,
      summary: op === 'retire' ? 'Retires a device (final) and revokes its certificates.' : `${op === 'disable' ? 'Disables' : 'Enables'} a device.`,
      params: idParam,
      response: { status: 200, description: 'the device', schema: deviceSchema },
      errors: { 404: 'no such device', 409: 'not allowed from its current status' },
      async handler({ res, principal, params }) {
        const actor = { by: principal.id, via: 'api' as const };
        const id = params.id!;
        if (op === 'retire') {
          const d = await registry().retire(id, actor);
          res.json({ ...deviceJson(d), revoked: d.revoked });
        } else res.json(deviceJson(await registry()[op](id, actor)));
      },
    }),
  );
  return [
    route<z.infer<typeof listQuery>>({
      method: 'get',
      path: '/api/v1/devices',
      id: 'listDevices',
      tag: 'devices',
      roles: readers,
      summary: 'Registered devices by id.',
      query: listQuery,
      response: { status: 200, description: 'a page of devices', schema: listOf(deviceSchema) },
      errors: { 400: 'a bad filter, limit or cursor' },
      async handler({ res, query }) {
        const after = query.cursor === undefined ? undefined : cursors.decode(query.cursor, (k) => k);
        const page = await registry().list({ after, limit: query.limit + 1, status: query.status });
        res.json(pageOf(page, query.limit, deviceJson, (last) => last.id));
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}',
      id: 'getDevice',
      tag: 'devices',
      roles: readers,
      summary: 'One device.',
      params: idParam,
      response: { status: 200, description: 'the device', schema: deviceSchema },
      errors: { 404: 'no such device' },
      async handler({ res, params }) {
        res.json(deviceJson(await registry().find(params.id!)));
      },
    }),
    route<undefined, z.infer<typeof deviceBody>>({
      method: 'post',
      path: '/api/v1/devices',
      id: 'registerDevice',
      tag: 'devices',
      roles: operators,
      summary: 'Registers a device; the answer holds its one-time enrollment secret (shown once).',
      body: deviceBody,
      response: { status: 201, description: 'the device and its one-time secret (Cache-Control: no-store)', schema: deviceSchema },
      errors: { 400: 'a bad id, profile or attribute', 409: 'the id exists' },
      async handler({ res, principal, body }) {
        const { device, secret } = await registry().register(body, { by: principal.id, via: 'api' });
        // The one-time secret is in this answer and nowhere else (stored as a hash, never logged).
        res.status(201).location(`/api/v1/devices/${encodeURIComponent(device.id)}`).set('Cache-Control', 'no-store').json({ ...deviceJson(device), secret });
      },
    }),
    ...transitions,
  ];
}
