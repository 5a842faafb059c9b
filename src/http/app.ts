/** The express application: admin REST API (later ACME and EST). */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { IssuedCertificate } from '../ca/authority.js';
import type { DeviceRegistry, DeviceView } from '../ra/devices/registry.js';
import type { RegistrationAuthority } from '../ra/registration.js';
import type { RevocationAuthority } from '../ra/revoke.js';
import { PkiError } from '../errors/pki-error.js';
import { toPem } from '../pki/pem.js';
import { assertProfile, assertRole, type TokenVerifier } from '../tokens/tokens.js';
import type { Logger } from './log.js';
import { fromBodyParserError } from '../errors/problem.js';
import { faultFields, sendProblem } from './problem.js';
import { z } from 'zod';

export interface AppDeps {
  ra: RegistrationAuthority;
  revocation: RevocationAuthority;
  /** Promised delays, reported to the caller of a revocation. */
  revocationSeconds: { ocsp: number; crl: number };
  tokens: TokenVerifier;
  log: Logger;
  bodyLimitBytes: number;
  /** The ACME server (RFC 8555), mounted at /acme; it renders its own problems. */
  acme?: express.Router;
  /** The device registry (/api/v1/devices, admin tokens only); absent: those routes answer 404. */
  devices?: DeviceRegistry;
}

const issueBody = z
  .object({
    profile: z.string().min(1).max(64),
    csr: z.string().min(1),
    /** Issuing CA id (optional). */
    ca: z.string().min(1).max(64).optional(),
    validitySeconds: z.number().int().positive().optional(),
  })
  .strict();

/** PEM chain, leaf first (RFC 8555 §9.1 media type). */
export const pemChain = (c: IssuedCertificate): string => [c.certDer, ...c.chainDer].map((d) => toPem('CERTIFICATE', d)).join('');

const revokeBody = z
  .object({
    reason: z.string().min(1).max(32).default('unspecified'),
    invalidityDate: z.iso.datetime({ offset: true }).optional(),
    /** Issuing CA id, only needed when two CAs used the same serial. */
    ca: z.string().min(1).max(64).optional(),
  })
  .strict();

const deviceListQuery = z
  .object({
    after: z.string().min(1).max(256).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    status: z.enum(['registered', 'active', 'disabled', 'retired']).optional(),
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

const bearer = (req: Request) => {
  const h = req.get('authorization') ?? '';
  return /^Bearer /i.test(h) ? h.slice(7).trim() : undefined;
};

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const json = express.json({ limit: deps.bodyLimitBytes, type: () => true });
  /** Parses the JSON body (after authentication) against a strict schema. */
  async function readJson<T>(req: Request, res: Response, schema: z.ZodType<T>): Promise<T> {
    if (!req.is('application/json')) throw new PkiError('unsupportedMediaType', 'send the request as application/json');
    await new Promise<void>((resolve, reject) => json(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
    const body = schema.safeParse(req.body);
    if (!body.success) {
      const i = body.error.issues[0]!;
      throw new PkiError('malformed', `${i.path.join('.') || 'body'}: ${i.message}`);
    }
    return body.data;
  }

  app.post('/api/v1/certificates', async (req, res) => {
    const token = await deps.tokens.verify(bearer(req));
    assertRole(token, ['issuer', 'admin']);
    const body = await readJson(req, res, issueBody);
    // A token limited to profiles; the RA then checks that the profile is enrollable over the API at all.
    assertProfile(token, body.profile);
    const issued = await deps.ra.requestCertificate({
      profile: body.profile,
      csr: body.csr,
      ...(body.ca ? { issuer: body.ca } : {}),
      ...(body.validitySeconds ? { validitySeconds: body.validitySeconds } : {}),
      requestedVia: 'api',
      requestedBy: token.id,
    });
    res.status(201).location(`/api/v1/certificates/${issued.serialHex}`).set('X-Trellis-Serial', issued.serialHex);
    const accept = req.accepts(['application/pem-certificate-chain', 'application/x-pem-file', 'application/pkix-cert', 'application/json']);
    if (accept === 'application/pkix-cert') res.type('application/pkix-cert').send(issued.certDer);
    else if (accept === 'application/json') {
      res.json({ serialHex: issued.serialHex, issuer: issued.issuerId, profile: issued.profile, notBefore: issued.notBefore, notAfter: issued.notAfter, chain: pemChain(issued) });
    } else res.type('application/pem-certificate-chain').send(pemChain(issued));
  });

  app.post('/api/v1/certificates/:serial/revoke', async (req, res) => {
    const token = await deps.tokens.verify(bearer(req));
    // Revocation is final for every reason but certificateHold: admin tokens only.
    assertRole(token, ['admin']);
    const body = await readJson(req, res, revokeBody);
    const r = await deps.revocation.revoke({
      serialHex: String(req.params.serial),
      reason: body.reason,
      ...(body.invalidityDate ? { invalidityDate: new Date(body.invalidityDate) } : {}),
      ...(body.ca ? { issuerId: body.ca } : {}),
      by: token.id,
      via: 'api',
    });
    res.json({ ...r, ocspWithinSeconds: deps.revocationSeconds.ocsp, crlWithinSeconds: deps.revocationSeconds.crl });
  });

  // ---- device registry (issue 10): admin tokens only ----
  const devices = deps.devices;
  if (devices) {
    const deviceJson = (d: DeviceView) => ({ ...d, createdAt: d.createdAt.toISOString(), updatedAt: d.updatedAt.toISOString() });
    const admin = async (req: Request) => {
      const token = await deps.tokens.verify(bearer(req));
      assertRole(token, ['admin']);
      return { by: token.id, via: 'api' as const };
    };
    app.get('/api/v1/devices', async (req, res) => {
      await admin(req);
      const q = deviceListQuery.safeParse(req.query);
      if (!q.success) {
        const i = q.error.issues[0]!;
        throw new PkiError('malformed', `${i.path.join('.') || 'query'}: ${i.message}`);
      }
      const { after, limit, status } = q.data;
      // One more than asked says whether a next page exists.
      const page = await devices.list({ after, limit: limit + 1, status });
      const shown = page.slice(0, limit);
      res.json({ devices: shown.map(deviceJson), next: page.length > limit ? shown.at(-1)!.id : null });
    });
    app.get('/api/v1/devices/:id', async (req, res) => {
      await admin(req);
      res.json(deviceJson(await devices.find(String(req.params.id))));
    });
    app.post('/api/v1/devices', async (req, res) => {
      const actor = await admin(req);
      const body = await readJson(req, res, deviceBody);
      const { device, secret } = await devices.register(body, actor);
      // The one-time secret is in this answer and nowhere else (stored as a hash, never logged).
      res.status(201).location(`/api/v1/devices/${encodeURIComponent(device.id)}`).set('Cache-Control', 'no-store').json({ ...deviceJson(device), secret });
    });
    for (const op of ['disable', 'enable', 'retire'] as const) {
      app.post(`/api/v1/devices/:id/${op}`, async (req, res) => {
        const actor = await admin(req);
        const id = String(req.params.id);
        if (op === 'retire') {
          const d = await devices.retire(id, actor);
          res.json({ ...deviceJson(d), revoked: d.revoked });
        } else res.json(deviceJson(await devices[op](id, actor)));
      });
    }
  }

  if (deps.acme) app.use('/acme', deps.acme);

  app.use((_req, _res) => {
    throw new PkiError('notFound', 'no such resource');
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const mapped = fromBodyParserError(err);
    const doc = sendProblem(res, mapped, 'api', req.requestId);
    // A server fault: the client gets the request id only; this log line (same id) has the type, message and stack.
    if (doc.status >= 500) deps.log({ level: 'error', msg: 'request failed', id: req.requestId, path: req.path, ...faultFields(mapped, err) });
    res.locals.problem = doc.type;
  });
  return app;
}
