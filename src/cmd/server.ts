/** `trellis serve`: unlock the issuing CAs and serve the API (HTTP or HTTPS with a self-issued certificate). */
import cluster from 'node:cluster';
import type { Issuer } from '../ca/issuer.js';
import { permits } from '../ca/key-state.js';
import { PkiError } from '../errors/pki-error.js';
import { issueCertificateHandler } from '../http/api/issue-hot.js';
import { frontHandler } from '../http/front.js';
import { lazyApp } from '../http/lazy-app.js';
import { frontLimits } from '../http/limits.js';
import { listen, type RunningServer } from '../http/listen.js';
import type { Logger } from '../http/log.js';
import { wireOcsp } from '../http/wire-ocsp.js';
import { toPem } from '../pki/pem.js';
import { TokenVerifier } from '../tokens/tokens.js';
import { crlHandler } from '../crl/http.js';
import { ocspHandler } from '../ocsp/http.js';
import type { ResponderStats } from '../ocsp/responder.js';
import { clusterMetricsText, joinClusterMetrics } from '../metrics/cluster.js';
import { CountedDeviceEnrollment, CountedOcspResponder, CountedRegistrationAuthority, CountedRevocationAuthority, countedAcmeOrders } from '../metrics/counted.js';
import { metricsHandler, readinessHandler } from '../metrics/http.js';
import { checkReadiness } from '../metrics/readiness.js';
import { ServeMetrics } from '../metrics/serve-metrics.js';
import { parseCertificate } from '../pki/certificate.js';
import { buildAcme, type AcmeServeOptions } from './acme-server.js';
import { crlPublisher } from './crl-publishing.js';
import { holdsKey, unlockIssuers, isOfflineCa, keystoreFor, openInstance, profile, type Instance } from './instance.js';
import { refusedPin } from './tokens.js';
import { startRotationTimer } from './rotations.js';
import { issueServerCertificate } from './held-certificates.js';
import { ResponderRotation } from '../ca/responder-rotation.js';
import { watchCas } from './ca-watch.js';
import { startReconciler } from './reconcile.js';
import { auditCheckpointHandler } from '../audit/http.js';
import { latestCheckpointFile, startAuditCheckpoints, verifyInstanceAudit } from './audit-signer.js';
import { estHandler } from '../est/http.js';
import { consoleHandler } from '../console/handler.js';
import type { Profile } from '../profiles/types.js';

export interface ServeOptions {
  dataDir: string;
  host?: string;
  port?: number;
  tls?: boolean;
  /** The online passphrase; copied into the keystore, which forgets it once the keys are open. The caller clears its Buffer. */
  passphrase: string | Buffer;
  /**
   * The PIN of the instance's PKCS#11 token (issuing CA keys), when trellis.json names one; copied into
   * the token keystore, whose copy is cleared after login. The login keeps it sealed in memory to log in again
   * if the token loses the login (docs/hsm.md). The caller clears its Buffer. The root token is never opened.
   */
  pkcs11Pin?: Buffer;
  log: Logger;
  accessLog?: boolean;
  databaseUrl?: string;
  /** ACME validation settings (`--acme-*` flags) or a replacement validator. */
  acme?: AcmeServeOptions;
  /** `--trusted-proxy` CIDRs; replace `server.trustedProxies` of trellis.json when given. */
  trustedProxies?: string[];
  /**
   * Waited for before the issuing CA keys open, and released once they are open (or the start failed). Opening
   * software keys runs scrypt with 128 MiB of memory (keys/envelope.ts); cluster workers take turns here so that
   * no two derive at the same time (commands/serve.ts).
   */
  keyOpeningTurn?: () => Promise<() => void>;
}

export interface Serving {
  url: string;
  instance: Instance;
  close(): Promise<void>;
}

/** TLS certificates live 30 days and renew when a third of that is left. */
const tlsValiditySeconds = 30 * 86400;
/**
 * How often serve reads CA changes made by other processes (ca-watch.ts): as
 * often as the CA reads key states, so that after a takeover elsewhere the
 * old CA's refusal (its key deactivated) lasts about a second here.
 */
const caWatchSeconds = 1;

export async function serve(opts: ServeOptions): Promise<Serving> {
  const instance = await openInstance(opts.dataDir, opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
  let running: RunningServer | undefined;
  /** What to stop on close, in the reverse order of starting. */
  const stops: (() => void | Promise<void>)[] = [];
  const stopAll = async () => {
    while (stops.length) await stops.pop()!();
  };
  let endTurn: (() => void) | undefined;
  try {
    for (const ca of instance.cas) {
      if (ca.role === 'root' && holdsKey(ca) && !isOfflineCa(ca)) {
        opts.log({ level: 'warn', msg: `root CA "${ca.id}" still opens with the online passphrase (made before roots had their own); run \`trellis ceremony protect-root --id ${ca.id}\`` });
      }
    }
    // Crash leftovers (stale intents, ACME orders stuck in processing) are settled before anything is served, then every few minutes.
    stops.push(await startReconciler(instance, opts.log));
    endTurn = await opts.keyOpeningTurn?.();
    const keystore = keystoreFor(instance, opts.passphrase);
    // Issuing CA keys in a token open with the PIN given; serve never logs in to the root's token.
    const pin = opts.pkcs11Pin;
    instance.tokens.setPins({
      online: pin ? async () => Buffer.from(pin) : refusedPin('no PKCS#11 PIN for serve: set TRELLIS_PKCS11_PIN or pass --pkcs11-pin-file'),
      root: refusedPin('serve never logs in to the root token'),
    });
    const issuers = await unlockIssuers(instance, keystore);
    // The keys opened below (responders, audit) share the issuing CAs' salt (keys/software-keystore.ts): no scrypt again.
    endTurn?.();
    endTurn = undefined;
    if (issuers.all().length === 0) throw new PkiError('invalidConfig', 'no active issuing CA to serve');
    // One publisher per database (lease): every worker and node serves the CRLs it stores.
    const crls = crlPublisher(instance, [], opts.log, { lease: true });
    // It makes the CRLs of the issuing CAs held here whose key may sign CRLs (not one waiting in preActivation for its takeover).
    const crlSigning = new Set<string>();
    const signCrlsOf = async (held: Issuer[]) => {
      for (const issuer of held) {
        if (crlSigning.has(issuer.id) || !permits(await instance.authority.keyStates.stateOf(issuer.id), 'crl')) continue;
        crls.addIssuer({ id: issuer.id, shards: issuer.crlShards, signer: instance.authority.crlSigner(issuer.id) });
        crlSigning.add(issuer.id);
      }
    };
    await signCrlsOf(issuers.all());
    // First pass before we answer: every shard has a CRL to serve.
    await crls.tick();
    crls.start();
    stops.push(() => crls.stop());
    // Metrics (docs/operations.md): read at scrape time from the parts built below; in a cluster worker the primary gathers them.
    const metrics: ServeMetrics = new ServeMetrics({
      now: () => instance.clock.now(),
      ocsp: (): ResponderStats => ocsp.stats(),
      crls: () => crls.held(),
      keyStates: async () => {
        // Read again at each scrape; when the database does not answer, the states last read are reported.
        await instance.authority.keyStates.refresh().catch((err: unknown) => opts.log({ level: 'warn', msg: 'metrics: key states not read; reporting the last read', error: String(err) }));
        return instance.cas.map((c) => ({ ca: c.id, state: instance.authority.keyStates.known(c.id) }));
      },
    });
    if (cluster.isWorker) await joinClusterMetrics(metrics.registry);
    const ocsp: CountedOcspResponder = new CountedOcspResponder({
      certificates: instance.store.certificates,
      // Pre-signed answers are shared through the database by every node.
      responses: instance.store.ocspResponses,
      clock: instance.clock,
      validitySeconds: instance.config.revocation.ocspValiditySeconds,
      cacheEntries: instance.config.revocation.ocspCacheEntries,
      pollSeconds: Math.max(1, Math.floor(instance.config.revocation.ocspSeconds / 3)),
      log: opts.log,
    }, metrics);
    /** The validity of the responder certificate each issuing CA's OCSP answers are signed with (/readyz). */
    const responderValidity = new Map<string, { notBefore: Date; notAfter: Date }>();
    const responders = new ResponderRotation({
      authority: instance.authority,
      certificates: instance.store.certificates,
      clock: instance.clock,
      keystore,
      profile: profile(instance, 'ocsp-responder'),
      actor: 'trellis-serve',
      issuers: () => issuers.all(),
      use: (m) => {
        ocsp.setResponder(m);
        const cert = parseCertificate(m.responderCertDer);
        responderValidity.set(m.issuer.id, { notBefore: cert.notBefore, notAfter: cert.notAfter });
      },
      log: opts.log,
    });
    await responders.check();
    // Signed audit checkpoints (docs/audit.md): the audit key opens now, while the keystore still has its passphrase.
    stops.push(await startAuditCheckpoints(instance, keystore, opts.log));
    // Every key serve needs is open: drop the passphrase. Responder renewals and issuing CAs made later open under the
    // cached master key, which opens only this instance's online envelopes (never the root's, which has its own passphrase and salt).
    keystore.forgetPassphrase();
    ocsp.start();
    // close() (not stop()) flushes the pending writes of pre-signed answers before the store closes.
    stops.push(() => ocsp.close());
    // Responder certificates are short-lived: checked hourly, renewed at two thirds of their life.
    stops.push(responders.start());
    // A takeover scheduled by `trellis ca rotate --at` happens at its time; the successor then gets its responder.
    const rotations = startRotationTimer(instance, opts.log, async () => {
      await signCrlsOf(issuers.all());
      await responders.check();
    });
    stops.push(() => rotations.stop());
    // CAs made, taken over or scheduled by other processes after the start (ca-watch.ts): new issuing CAs get their CRLs and responder.
    stops.push(
      watchCas(instance, keystore, {
        seconds: caWatchSeconds,
        log: opts.log,
        onNewIssuers: async (ids) => {
          for (const id of ids) crlSigning.delete(id);
          await responders.check();
        },
        // A takeover made elsewhere activates a CA this node holds: its CRLs start here too.
        onPass: async () => {
          rotations.rearm();
          await signCrlsOf(issuers.all());
        },
      }),
    );
    const revocation = new CountedRevocationAuthority({ certificates: instance.store.certificates, audit: instance.audit, clock: instance.clock, listeners: [crls, ocsp] }, metrics);
    // The RA counts what it has issued, whichever channel asked (API, ACME, EST).
    const ra = new CountedRegistrationAuthority({ ca: instance.authority, profiles: instance.profiles, issuers }, metrics);
    const acme = instance.config.acme.enabled ? await buildAcme(instance, issuers, revocation, opts.acme ?? {}, opts.log, { ra, orders: countedAcmeOrders(instance.store.acmeOrders, metrics) }) : undefined;
    if (acme) stops.push(() => acme.close());
    // The admin API (express, its routes, the device registry) loads with the first request that reaches it (lazy-app.ts).
    const app = lazyApp(async () => {
      const [{ createApp }, { deviceRegistryFor }, { operatorAuthenticator }] = await Promise.all([import('../http/app.js'), import('./commands/device.js'), import('../http/operator-auth.js')]);
      return createApp({
        ra,
        revocation,
        revocationSeconds: { ocsp: instance.config.revocation.ocspSeconds, crl: instance.config.revocation.crlSeconds },
        tokens: new TokenVerifier(instance.store.tokens, instance.clock),
        log: opts.log,
        bodyLimitBytes: instance.config.server.bodyLimitBytes,
        devices: deviceRegistryFor(instance, revocation),
        tokenStore: instance.store.tokens,
        queries: instance.store.queries,
        cas: instance.store.cas,
        profiles: instance.profiles,
        audit: instance.audit,
        verifyAudit: () => verifyInstanceAudit(instance),
        clock: instance.clock,
        // mTLS for operators: only a TLS connection carries a client certificate.
        certificates: operatorAuthenticator({ queries: instance.store.queries, cas: () => instance.cas, clock: instance.clock }),
      });
    }, opts.log);
    // EST (RFC 7030) for the device registry; enrollment itself needs --tls (docs/est.md).
    const enrollment = new CountedDeviceEnrollment({
      ra,
      devices: instance.store.devices,
      manufacturers: instance.store.manufacturerCas,
      certificates: instance.store.certificates,
      revocation,
      audit: instance.audit,
      clock: instance.clock,
      issuingCas: () => instance.cas.filter((c) => c.role === 'issuing'),
    }, metrics);
    /** The issuing CA of a profile up to its root (DER). */
    const caChain = (p: Profile): Buffer[] => {
      const out: Buffer[] = [];
      for (let ca = instance.cas.find((c) => c.id === issuers.issuerFor(p).id); ca && out.length < 8; ca = instance.cas.find((c) => c.id === ca!.parentId)) out.push(ca.certDer);
      return out;
    };
    let ready = false;
    const trustedProxies = opts.trustedProxies ?? instance.config.server.trustedProxies;
    const limits = frontLimits(instance.config.server, trustedProxies);
    // The front and OCSP's raw path (plain HTTP) share one access log, latency metric, client address rule and rate-limit buckets.
    const perRequest = {
      log: opts.log,
      accessLog: opts.accessLog ?? true,
      observe: (url: string, status: number, seconds: number) => metrics.requestServed(url, status, seconds),
      trustedProxies,
      limits: limits.requests,
    };
    const handler = frontHandler({
      ...perRequest,
      app,
      caCertificate: (id) => instance.cas.find((c) => c.id === id)?.certDer,
      ready: () => ready,
      clock: instance.clock,
      hot: [
        ocspHandler(ocsp, () => instance.clock.now(), opts.log),
        ...(acme ? [acme.handler] : []),
        crlHandler(crls, () => instance.clock.now(), opts.log),
        // POST /api/v1/certificates with a bearer token, as express would answer it (the other shapes go on to express).
        issueCertificateHandler({ ra, tokens: new TokenVerifier(instance.store.tokens, instance.clock), bodyLimitBytes: instance.config.server.bodyLimitBytes, log: opts.log }),
        auditCheckpointHandler(() => latestCheckpointFile(instance), opts.log),
        estHandler({ enrollment, profiles: instance.profiles, caChain, log: opts.log }),
        consoleHandler({ tokens: new TokenVerifier(instance.store.tokens, instance.clock), log: opts.log }),
        metricsHandler(async () => ({ contentType: metrics.contentType, text: await (cluster.isWorker ? clusterMetricsText() : metrics.text()) }), opts.log),
        readinessHandler(
          (reqId) =>
            checkReadiness({
              now: () => instance.clock.now(),
              serving: () => ready,
              keyStates: () => instance.store.cas.keyStates(),
              issuers: () => issuers.all(),
              crls: () => crls.held(),
              responders: () => [...responderValidity].map(([caId, v]) => ({ caId, ...v })),
              log: opts.log,
            }, reqId),
          opts.log,
        ),
      ],
    });
    const host = opts.host ?? instance.config.server.host;
    const port = opts.port ?? instance.config.server.port;
    if (opts.tls) {
      const tlsHost = new URL(instance.config.baseUrl).hostname;
      // The server certificate comes from whichever issuing CA the `server` profile maps to at the time (a rotation moves it).
      const issueTls = () => serverTls(instance, issuers.issuerFor(profile(instance, 'server')), tlsHost);
      const tls = await issueTls();
      // A client certificate is asked for, not required: browsers and ACME clients connect without one,
      // devices present theirs to EST (which verifies the chain itself).
      running = await listen(handler, { host, port, tls: () => ({ cert: tls.certPem, key: tls.keyPem, requestCert: true, rejectUnauthorized: false }), limits: limits.connections });
      stops.push(renewTlsHourly(running.server as import('node:https').Server, tls.notAfter, issueTls, instance, opts.log));
    } else {
      running = await listen(handler, {
        host,
        port,
        limits: limits.connections,
        // Cached OCSP GET/POST answered below node:http (http/wire.ts); anything else on the connection is node's.
        wire: wireOcsp({ ...perRequest, responder: ocsp, now: () => instance.clock.now() }),
      });
    }
    ready = true;
    opts.log({ msg: 'serving', url: running.url, issuers: issuers.all().map((i) => i.id), database: instance.store.kind });
    const r = running;
    return {
      url: r.url,
      instance,
      async close() {
        ready = false;
        await r.close();
        await stopAll();
        await instance.close();
      },
    };
  } catch (err) {
    endTurn?.();
    await running?.close(0);
    await stopAll();
    await instance.close();
    throw err;
  }
}

type ServerTls = { certPem: string; keyPem: string; notAfter: Date };

async function serverTls(instance: Instance, issuer: Issuer, host: string): Promise<ServerTls> {
  const { issued, keyPem } = await issueServerCertificate(instance, issuer, host, tlsValiditySeconds, 'trellis-serve');
  return { certPem: [issued.certDer, ...issued.chainDer].map((d) => toPem('CERTIFICATE', d)).join(''), keyPem, notAfter: issued.notAfter };
}

/** Renews the HTTPS certificate when a third of its life is left (checked hourly). Returns a stop function. */
function renewTlsHourly(server: import('node:https').Server, notAfter: Date, issueTls: () => Promise<ServerTls>, instance: Instance, log: ServeOptions['log']): () => void {
  const timer = setInterval(async () => {
    if (notAfter.getTime() - instance.clock.now().getTime() > (tlsValiditySeconds * 1000) / 3) return;
    try {
      const next = await issueTls();
      server.setSecureContext({ cert: next.certPem, key: next.keyPem });
      notAfter = next.notAfter;
      log({ msg: 'tls certificate renewed', notAfter });
    } catch (err) {
      log({ level: 'error', msg: 'tls renewal failed; keeping the current certificate', error: String(err) });
    }
  }, 3600_000);
  timer.unref();
  return () => clearInterval(timer);
}
