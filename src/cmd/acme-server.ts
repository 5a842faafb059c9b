/**
 * Wiring of the ACME server: which profiles get a directory, the RA parts
 * over the store, the validation authority with its serve options, and the
 * handler that `serve` gives the front for everything under /acme.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { acmeRouter } from '../acme/router.js';
import { PkiError } from '../errors/pki-error.js';
import type { Logger } from '../http/log.js';
import { enrollmentRefusal } from '../profiles/enrollment.js';
import type { Profile } from '../profiles/types.js';
import { AcmeAccounts, eabFits } from '../ra/acme/accounts.js';
import { NonceService } from '../ra/acme/nonces.js';
import { AcmeOrders } from '../ra/acme/orders.js';
import type { AcmeOrderRepository, ChallengeValidator } from '../ra/acme/ports.js';
import { RateLimiter } from '../ra/acme/rate-limit.js';
import { AcmeRevocation } from '../ra/acme/revocation.js';
import type { RegistrationAuthority } from '../ra/registration.js';
import type { RevocationAuthority } from '../ra/revoke.js';
import { createValidator } from '../va/index.js';
import { registrationAuthority, type Instance } from './instance.js';
import type { IssuerSelection } from '../ca/issuer-selection.js';

/** `serve` options of the validation authority (`--acme-*` flags). */
export interface AcmeServeOptions {
  /** Replaces the validation authority (benchmarks: an always-valid stub at the VA only). */
  validator?: ChallengeValidator;
  http01Port?: number;
  tlsAlpn01Port?: number;
  /** DNS server HOST:PORT that identifiers are resolved with. */
  resolver?: string;
  /** CIDRs validation may connect to despite the default deny list (loopback, private ranges). */
  allowAddresses?: string[];
}

/**
 * Profiles with an ACME directory: those configured in acme.profiles, else
 * every profile whose enrollment lists acme and whose SAN rules accept DNS
 * names or IP addresses, or that carries a device id (ordered as a
 * permanent-identifier, draft-ietf-acme-device-attest). A configured
 * profile that is not one of them stops `serve` with invalidConfig.
 */
export function acmeProfiles(instance: Instance): string[] {
  const eligible = (p: Profile) => enrollmentRefusal(p, 'acme') === null && Boolean(p.san.dns || p.san.ip || p.deviceId);
  const configured = instance.config.acme.profiles;
  const wanted = configured ?? [...instance.profiles.values()].filter(eligible).map((p) => p.name);
  for (const name of configured ?? []) {
    const p = instance.profiles.get(name);
    if (!p) throw new PkiError('invalidConfig', `acme.profiles: unknown profile "${name}" (known: ${[...instance.profiles.keys()].join(', ')})`);
    const refusal = enrollmentRefusal(p, 'acme');
    if (refusal?.type === 'forbidden') {
      const listed = p.enrollment.length > 0 ? `its enrollment lists ${p.enrollment.join(', ')}` : 'its enrollment lists no channel';
      throw new PkiError('invalidConfig', `acme.profiles: profile "${name}" is not enrollable over ACME (${listed}); add acme to enrollment in its YAML or remove it from acme.profiles`);
    }
    if (refusal) throw new PkiError('invalidConfig', `acme.profiles: ${refusal.message}`);
    if (!eligible(p)) throw new PkiError('invalidConfig', `acme.profiles: profile "${name}" accepts no DNS names, IP addresses or device ids, the identifiers ACME orders carry`);
  }
  const def = instance.config.acme.defaultProfile;
  if (!wanted.includes(def)) {
    throw new PkiError('invalidConfig', `acme.defaultProfile "${def}" has no ACME directory (directories: ${wanted.join(', ') || 'none: no profile lists acme in its enrollment'}); list acme in its enrollment, choose another acme.defaultProfile, or set acme.enabled false`);
  }
  return [...wanted].sort();
}

/** Directories that need external account binding: those configured, and every device directory (one EAB key per device). */
export function acmeRequiresEab(instance: Instance): (directory: string) => boolean {
  const configured = instance.config.acme.externalAccountRequired;
  return (d) => configured.includes(d) || Boolean(instance.profiles.get(d)?.deviceId);
}

/** The account service alone (the CLI's `acme eab` commands need no CA key). */
export function acmeAccounts(instance: Instance): AcmeAccounts {
  const c = instance.config.acme;
  return new AcmeAccounts({
    accounts: instance.store.acmeAccounts,
    eabKeys: instance.store.acmeEabKeys,
    audit: instance.audit,
    clock: instance.clock,
    requiresEab: acmeRequiresEab(instance),
    termsOfService: c.termsOfService,
    newAccountsPerAddress: new RateLimiter(instance.clock, 'new accounts per address', c.rateLimits.newAccountsPerAddressPerHour),
  });
}

/** Issuer id by key identifier (hex): every CA of the instance, unlocked or not. */
function issuerIndex(instance: Instance): (keyIdHex: string) => string | undefined {
  const byKeyId = new Map(instance.cas.map((c) => [c.skiHex.toLowerCase(), c.id]));
  return (hex) => byKeyId.get(hex.toLowerCase());
}

/** Builds the ACME front handler and its background work (pruning used nonces). `parts` replace the RA and order repository made from the instance (serve's count for /metrics). */
export async function buildAcme(instance: Instance, issuers: IssuerSelection, revocation: RevocationAuthority, opts: AcmeServeOptions, log: Logger, parts: { ra?: RegistrationAuthority; orders?: AcmeOrderRepository } = {}): Promise<{ handler: (req: IncomingMessage, res: ServerResponse) => boolean; close(): void }> {
  const c = instance.config.acme;
  const profiles = acmeProfiles(instance);
  const validator =
    opts.validator ??
    createValidator({
      ...(opts.http01Port !== undefined ? { http01Port: opts.http01Port } : {}),
      ...(opts.tlsAlpn01Port !== undefined ? { tlsAlpn01Port: opts.tlsAlpn01Port } : {}),
      ...(opts.resolver !== undefined ? { resolver: opts.resolver } : {}),
      allow: opts.allowAddresses ?? [],
      clock: instance.clock,
    });
  const accounts = acmeAccounts(instance);
  const requiresEab = acmeRequiresEab(instance);
  const issuerByKeyId = issuerIndex(instance);
  const limiter = (what: string, perHour: number) => new RateLimiter(instance.clock, what, perHour);
  const orders = new AcmeOrders({
    orders: parts.orders ?? instance.store.acmeOrders,
    certificates: instance.store.certificates,
    ra: parts.ra ?? registrationAuthority(instance, issuers),
    validator,
    audit: instance.audit,
    clock: instance.clock,
    profiles: instance.profiles,
    limits: {
      newOrdersPerAccount: limiter('new orders per account', c.rateLimits.newOrdersPerAccountPerHour),
      newOrdersPerAddress: limiter('new orders per address', c.rateLimits.newOrdersPerAddressPerHour),
      failedValidationsPerAccount: limiter('failed validations per account', c.rateLimits.failedValidationsPerAccountPerHour),
      failedValidationsPerAddress: limiter('failed validations per address', c.rateLimits.failedValidationsPerAddressPerHour),
    },
    orderLifetimeSeconds: c.orderLifetimeSeconds,
    authorizationLifetimeSeconds: c.authorizationLifetimeSeconds,
    issuerByKeyId,
    log,
    // serve's revocation authority: a certificate superseded by a device's new one reaches OCSP and CRLs at once.
    devices: { devices: instance.store.devices, manufacturers: instance.store.manufacturerCas, revocation },
    async eabAllows(account, directory) {
      if (!requiresEab(directory)) return true;
      const key = account.eabKeyId ? await instance.store.acmeEabKeys.find(account.eabKeyId) : null;
      return !!key && eabFits(key, directory);
    },
  });
  const acmeRevocation = new AcmeRevocation({ certificates: instance.store.certificates, revocation, orders, windows: instance.store.renewalWindows, clock: instance.clock, issuerByKeyId });
  const nonces = await NonceService.open({ secrets: instance.store.secrets, nonces: instance.store.acmeNonces, clock: instance.clock, lifetimeSeconds: c.nonceLifetimeSeconds });
  const root = instance.cas.find((ca) => ca.role === 'root');
  const handler = acmeRouter({
    accounts,
    orders,
    revocation: acmeRevocation,
    nonces,
    directories: { profiles, defaultProfile: c.defaultProfile, requiresEab, termsOfService: c.termsOfService },
    // Preferred chain: up to (not including) the root, as TLS servers send it; the alternate adds the root for devices that want the anchor too.
    chains(issuerId) {
      const chain = issuers.all().find((i) => i.id === issuerId)?.chainDer ?? [];
      return root ? [chain, [...chain, root.certDer]] : [chain];
    },
    bodyLimitBytes: instance.config.server.bodyLimitBytes,
    publicBaseUrl: instance.config.baseUrl,
    log,
  });
  const prune = setInterval(() => {
    nonces.prune().catch((err) => log({ level: 'error', msg: 'pruning used ACME nonces failed', error: String(err) }));
  }, 60_000);
  prune.unref();
  return { handler, close: () => clearInterval(prune) };
}
