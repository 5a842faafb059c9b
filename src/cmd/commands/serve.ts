/** `trellis serve`: unlock the issuing CAs and serve the API (HTTP or HTTPS with a self-issued certificate). */
import type { Issuer } from '../../ca/issuer.js';
import { PkiError } from '../../errors/pki-error.js';
import { createApp } from '../../http/app.js';
import { deviceRegistryFor } from './cli-device.js';
import { frontHandler, listen, type RunningServer } from '../../http/front.js';
import type { Logger } from '../../http/log.js';
import { toPem } from '../../pki/pem.js';
import { TokenVerifier } from '../../tokens/tokens.js';
import { RevocationAuthority } from '../../ra/revoke.js';
import { crlHandler } from '../../crl/http.js';
import { ocspHandler } from '../../ocsp/http.js';
import { OcspResponder } from '../../ocsp/responder.js';
import { buildAcme, type AcmeServeOptions } from './acme.js';
import { crlPublisher } from './crl.js';
import { holdsKey, IssuerRegistry, isOfflineCa, keystoreFor, openInstance, registrationAuthority, type Instance } from '../instance.js';
import { refusedPin } from '../tokens.js';
import { startRotationTimer } from '../rotations.js';
import { currentResponder, issueServerCertificate } from './responder.js';
import { startReconciler } from '../reconcile.js';
import { auditCheckpointHandler } from '../../audit/http.js';
import { latestCheckpointFile, startAuditCheckpoints } from './audit-signer.js';
import { estHandler } from '../../est/http.js';
import { DeviceEnrollment } from '../../ra/devices/enroll.js';
import type { Profile } from '../../profiles/types.js';

export interface ServeOptions {
  dataDir: string;
  host?: string;
  port?: number;
  tls?: boolean;
  /** The online passphrase; copied into the keystore, which forgets it once the keys are open. The caller clears its Buffer. */
  passphrase: string | Buffer;
  /**
   * The PIN of the instance's PKCS#11 token (issuing CA keys), when trellis.json names one; copied into
   * the token keystore, which forgets it after login. The caller clears its Buffer. The root token is never opened.
   */
  pkcs11Pin?: Buffer;
  log: Logger;
  accessLog?: boolean;
  databaseUrl?: string;
  /** ACME validation settings (`--acme-*` flags) or a replacement validator. */
  acme?: AcmeServeOptions;
  /** `--trusted-proxy` CIDRs; replace `server.trustedProxies` of trellis.json when given. */
  trustedProxies?: string[];
}

export interface Serving {
  url: string;
  instance: Instance;
  close(): Promise<void>;
}

/** TLS certificates live 30 days and renew when a third of that is left. */
const tlsValiditySeconds = 30 * 86400;

export async function serve(opts: ServeOptions): Promise<Serving> {
  const instance = await openInstance(opts.dataDir, opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
  let running: RunningServer | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let stopCrls: () => Promise<void> = async () => {};
  try {
    for (const ca of instance.cas) {
      if (ca.role === 'root' && holdsKey(ca) && !isOfflineCa(ca)) {
        opts.log({ level: 'warn', msg: `root CA "${ca.id}" still opens with the online passphrase (made before roots had their own); run \`trellis ceremony protect-root --id ${ca.id}\`` });
      }
    }
    // Crash leftovers (stale intents, ACME orders stuck in processing) are settled before anything is served, then every few minutes.
    stopCrls = await startReconciler(instance, opts.log);
    const keystore = keystoreFor(instance, opts.passphrase);
    // Issuing CA keys in a token open with the PIN given; serve never logs in to the root's token.
    const pin = opts.pkcs11Pin;
    instance.tokens.setPins({
      online: pin ? async () => Buffer.from(pin) : refusedPin('no PKCS#11 PIN for serve: set TRELLIS_PKCS11_PIN or pass --pkcs11-pin-file'),
      root: refusedPin('serve never logs in to the root token'),
    });
    const issuers = await IssuerRegistry.unlock(instance, keystore);
    if (issuers.all().length === 0) throw new PkiError('invalidConfig', 'no active issuing CA to serve');
    // One publisher per database (lease): every worker and node serves the CRLs it stores.
    const crls = crlPublisher(instance, issuers.all(), opts.log, { lease: true });
    // First pass before we answer: every shard has a CRL to serve.
    await crls.tick();
    crls.start();
    stopCrls = () => crls.stop();
    const ocsp = new OcspResponder({
      certificates: instance.store.certificates,
      // Pre-signed answers are shared through the database by every node.
      responses: instance.store.ocspResponses,
      clock: instance.clock,
      validitySeconds: instance.config.revocation.ocspValiditySeconds,
      pollSeconds: Math.max(1, Math.floor(instance.config.revocation.ocspSeconds / 3)),
      log: opts.log,
    });
    const responders = new Map<string, Date>();
    const loadResponders = async () => {
      for (const issuer of issuers.all()) {
        const m = await currentResponder(instance, keystore, issuer, 'trellis-serve');
        if (responders.get(issuer.id)?.getTime() === m.notAfter.getTime()) continue;
        ocsp.setResponder(m);
        responders.set(issuer.id, m.notAfter);
      }
    };
    await loadResponders();
    // Signed audit checkpoints (docs/audit.md): the audit key opens now, while the keystore still has its passphrase.
    const stopCheckpoints = await startAuditCheckpoints(instance, keystore, opts.log);
    const stopBeforeCheckpoints = stopCrls;
    stopCrls = async () => {
      await stopCheckpoints();
      await stopBeforeCheckpoints();
    };
    // Every key serve needs is open: drop the passphrase. Responder renewals generate keys under the cached master key,
    // which opens only this instance's online envelopes (never the root's, which has its own passphrase and salt).
    keystore.forgetPassphrase();
    ocsp.start();
    // Responder certificates are short-lived: check hourly, renew at two thirds of their life.
    const responderTimer = setInterval(() => loadResponders().catch((err) => opts.log({ level: 'error', msg: 'OCSP responder renewal failed', error: String(err) })), 3600_000);
    responderTimer.unref();
    // A takeover scheduled by `trellis ca rotate --at` happens at its time; the successor then gets its responder.
    const stopRotations = startRotationTimer(instance, opts.log, () => loadResponders());
    const previousStop = stopCrls;
    stopCrls = async () => {
      stopRotations();
      clearInterval(responderTimer);
      // close() (not stop()) flushes the pending writes of pre-signed answers before the store closes.
      await ocsp.close();
      await previousStop();
    };
    const revocation = new RevocationAuthority({ certificates: instance.store.certificates, audit: instance.audit, clock: instance.clock, listeners: [crls, ocsp] });
    const acme = instance.config.acme.enabled ? await buildAcme(instance, issuers, revocation, opts.acme ?? {}, opts.log) : undefined;
    const stopBeforeAcme = stopCrls;
    stopCrls = async () => {
      acme?.close();
      await stopBeforeAcme();
    };
    const app = createApp({
      ...(acme ? { acme: acme.router } : {}),
      ra: registrationAuthority(instance, issuers),
      revocation,
      revocationSeconds: { ocsp: instance.config.revocation.ocspSeconds, crl: instance.config.revocation.crlSeconds },
      tokens: new TokenVerifier(instance.store.tokens, instance.clock),
      log: opts.log,
      bodyLimitBytes: instance.config.server.bodyLimitBytes,
      devices: deviceRegistryFor(instance, revocation),
    });
    const caDer = new Map(instance.cas.map((c) => [c.id, c.certDer]));
    // EST (RFC 7030) for the device registry; enrollment itself needs --tls (docs/est.md).
    const ra = registrationAuthority(instance, issuers);
    const enrollment = new DeviceEnrollment({
      ra,
      devices: instance.store.devices,
      manufacturers: instance.store.manufacturerCas,
      certificates: instance.store.certificates,
      revocation,
      audit: instance.audit,
      clock: instance.clock,
      issuingCas: () => instance.cas.filter((c) => c.role === 'issuing'),
    });
    /** The issuing CA of a profile up to its root (DER). */
    const caChain = (p: Profile): Buffer[] => {
      const out: Buffer[] = [];
      for (let ca = instance.cas.find((c) => c.id === issuers.issuerFor(p).id); ca && out.length < 8; ca = instance.cas.find((c) => c.id === ca!.parentId)) out.push(ca.certDer);
      return out;
    };
    let ready = false;
    const handler = frontHandler({
      app,
      caCertificate: (id) => caDer.get(id),
      ready: () => ready,
      log: opts.log,
      clock: instance.clock,
      accessLog: opts.accessLog ?? true,
      hot: [
        ocspHandler(ocsp, () => instance.clock.now(), opts.log),
        crlHandler(crls, () => instance.clock.now()),
        auditCheckpointHandler(() => latestCheckpointFile(instance), opts.log),
        estHandler({ enrollment, profiles: instance.profiles, caChain, log: opts.log }),
      ],
      trustedProxies: opts.trustedProxies ?? instance.config.server.trustedProxies,
    });
    const host = opts.host ?? instance.config.server.host;
    const port = opts.port ?? instance.config.server.port;
    if (opts.tls) {
      const tlsHost = new URL(instance.config.baseUrl).hostname;
      const issuer = issuers.issuerFor(instance.profiles.get('server')!);
      const tls = await serverTls(instance, issuer, tlsHost);
      // A client certificate is asked for, not required: browsers and ACME clients connect without one,
      // devices present theirs to EST (which verifies the chain itself).
      running = await listen(handler, { host, port, tls: () => ({ cert: tls.certPem, key: tls.keyPem, requestCert: true, rejectUnauthorized: false }) });
      const server = running.server as import('node:https').Server;
      let notAfter = tls.notAfter;
      renewTimer = setInterval(async () => {
        if (notAfter.getTime() - instance.clock.now().getTime() > tlsValiditySeconds * 1000 / 3) return;
        try {
          const next = await serverTls(instance, issuer, tlsHost);
          server.setSecureContext({ cert: next.certPem, key: next.keyPem });
          notAfter = next.notAfter;
          opts.log({ msg: 'tls certificate renewed', notAfter });
        } catch (err) {
          opts.log({ level: 'error', msg: 'tls renewal failed; keeping the current certificate', error: String(err) });
        }
      }, 3600_000);
      renewTimer.unref();
    } else {
      running = await listen(handler, { host, port });
    }
    ready = true;
    opts.log({ msg: 'serving', url: running.url, issuers: issuers.all().map((i) => i.id), database: instance.store.kind });
    const r = running;
    return {
      url: r.url,
      instance,
      async close() {
        ready = false;
        clearInterval(renewTimer);
        await r.close();
        await stopCrls();
        await instance.close();
      },
    };
  } catch (err) {
    clearInterval(renewTimer);
    await stopCrls();
    await running?.close(0);
    await instance.close();
    throw err;
  }
}

async function serverTls(instance: Instance, issuer: Issuer, host: string) {
  const { issued, keyPem } = await issueServerCertificate(instance, issuer, host, tlsValiditySeconds, 'trellis-serve');
  return { certPem: [issued.certDer, ...issued.chainDer].map((d) => toPem('CERTIFICATE', d)).join(''), keyPem, notAfter: issued.notAfter };
}
