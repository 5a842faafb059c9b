/**
 * The instance configuration, `<data>/trellis.json`, written by `trellis init`
 * and parsed once at start with a strict schema (unknown keys fail closed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { defaultHeldBytes, defaultHeldEntries } from '../crl/held.js';
import { PkiError } from '../errors/pki-error.js';
import { makePrivate, makePrivateDir, warnIfSharedDir, writePrivateFile } from './file-permissions.js';
import { configFile } from './config-file.js';

const perHour = (n: number) => z.number().int().min(0).max(10_000_000).default(n);

/** ACME settings; every field has a default, so older trellis.json files parse unchanged. */
export const acmeConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Profile behind `/acme/directory`. */
    defaultProfile: z.string().min(1).default('server'),
    /**
     * Profiles that get `/acme/{profile}/directory`; absent = every profile whose enrollment lists acme and whose
     * SAN rules accept DNS names or IPs. Naming any other profile stops `serve` (cmd/acme-server.ts).
     */
    profiles: z.array(z.string().min(1)).optional(),
    /** Profiles whose directory requires external account binding (RFC 8555 §7.3.4). */
    externalAccountRequired: z.array(z.string().min(1)).default([]),
    /** `meta.termsOfService` URL; clients must then agree (termsOfServiceAgreed). */
    termsOfService: z.string().url().optional(),
    /** Pending orders and authorizations expire after this. */
    orderLifetimeSeconds: z.number().int().min(60).max(30 * 86400).default(7 * 86400),
    /** A valid authorization is reused for new orders of the same account for this long. */
    authorizationLifetimeSeconds: z.number().int().min(60).max(90 * 86400).default(30 * 86400),
    /** Nonces are accepted for this long after they were handed out. */
    nonceLifetimeSeconds: z.number().int().min(10).max(86400).default(3600),
    /** Per node; 0 switches a limit off. */
    rateLimits: z
      .object({
        newOrdersPerAccountPerHour: perHour(3000),
        newOrdersPerAddressPerHour: perHour(10000),
        failedValidationsPerAccountPerHour: perHour(60),
        failedValidationsPerAddressPerHour: perHour(300),
        newAccountsPerAddressPerHour: perHour(300),
      })
      .strict()
      .default({ newOrdersPerAccountPerHour: 3000, newOrdersPerAddressPerHour: 10000, failedValidationsPerAccountPerHour: 60, failedValidationsPerAddressPerHour: 300, newAccountsPerAddressPerHour: 300 }),
  })
  .strict();

export type AcmeConfig = z.infer<typeof acmeConfigSchema>;

/**
 * Where the CA keys live (docs/hsm.md). `software`: envelopes in the database
 * under the passphrases. `pkcs11`: issuing CA keys in the token labelled
 * `token` of the PKCS#11 module at `module`; the root in the token labelled
 * `rootToken` when given (its own PIN, never opened by serve), else a
 * software key under the root passphrase. PINs are never stored here.
 */
export const keystoreConfigSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('software') }).strict(),
  z
    .object({
      type: z.literal('pkcs11'),
      module: z.string().min(1),
      token: z.string().min(1).max(32),
      rootToken: z.string().min(1).max(32).optional(),
    })
    .strict()
    .refine((k) => k.rootToken !== k.token, 'rootToken must differ from token (the root stays offline in its own token)'),
]);

export type KeystoreConfig = z.infer<typeof keystoreConfigSchema>;

/**
 * Limits of the HTTP front (src/http/limits.ts), per process; every field has a
 * default, so older trellis.json files parse unchanged. Rates are per client
 * address (the peer, or what a trusted proxy forwarded); 0 switches a rate off.
 */
export const serverLimitsSchema = z
  .object({
    /** Request line and headers together, bytes (Node's maxHeaderSize); more is answered 431. */
    maxHeaderBytes: z.number().int().min(1024).max(256 * 1024).default(16 * 1024),
    /** Header fields per request; more is answered 431. */
    maxHeaders: z.number().int().min(8).max(1000).default(64),
    /** Open connections of the process; more are closed unanswered. */
    maxConnections: z.number().int().min(1).max(1_000_000).default(4096),
    /** Open connections per peer address (trusted proxies and exempt addresses excepted); 0 = no cap. */
    maxConnectionsPerAddress: z.number().int().min(0).max(1_000_000).default(128),
    /** A client must send the request line and headers within this (slowloris); 408 and close. */
    headersTimeoutSeconds: z.number().int().min(1).max(600).default(10),
    /** A client must send the whole request, body included, within this; 408 and close. */
    requestTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
    /** An idle keep-alive connection is closed after this. */
    keepAliveTimeoutSeconds: z.number().int().min(1).max(600).default(5),
    /** ACME, EST, the admin API, the console, metrics and health: sustained requests per second per client address. */
    requestsPerSecond: z.number().min(0).max(1_000_000).default(50),
    /** ...and the burst allowed above that rate. */
    burstRequests: z.number().int().min(1).max(10_000_000).default(200),
    /** OCSP, CRLs and CA certificates (relying parties, often behind one NAT): requests per second per client address. */
    statusRequestsPerSecond: z.number().min(0).max(1_000_000).default(1000),
    /** ...and the burst allowed above that rate. */
    statusBurstRequests: z.number().int().min(1).max(10_000_000).default(5000),
    /**
     * Client addresses (CIDRs) no rate or per-address connection cap applies to. Loopback by default: a
     * local reverse proxy that is not listed in trustedProxies would otherwise put every client in one bucket.
     */
    exemptAddresses: z.array(z.string().min(1).max(64)).max(256).default(['127.0.0.0/8', '::1']),
  })
  .strict()
  // Node refuses a headers timeout longer than the request timeout (the headers are part of the request).
  .refine((l) => l.headersTimeoutSeconds <= l.requestTimeoutSeconds, { message: 'headersTimeoutSeconds must not exceed requestTimeoutSeconds', path: ['headersTimeoutSeconds'] });

export type ServerLimits = z.infer<typeof serverLimitsSchema>;

export const instanceConfigSchema = z
  .object({
    version: z.literal(1),
    /** Public base URL: AIA, caIssuers, CRL distribution points and OCSP URLs are built from it. */
    baseUrl: z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be http:// or https://'),
    /** Database URL; absent = SQLite file in the data directory. */
    databaseUrl: z.string().min(1).optional(),
    /** CRL shards per issuing CA (fixed per certificate at issuance). */
    crlShards: z.number().int().min(1).max(4096).default(16),
    /** Issuing CA used when neither the request nor `profileIssuers` names one. */
    defaultIssuer: z.string().min(1).optional(),
    /** Profile name → issuing CA id. */
    profileIssuers: z.record(z.string(), z.string()).default({}),
    /** How fast a revocation reaches relying parties (any node sharing the database). */
    revocation: z
      .object({
        /** OCSP answers "revoked" within this many seconds (nodes poll the database at a third of it). */
        ocspSeconds: z.number().int().min(1).max(3600).default(5),
        /** The certificate's CRL shard (and delta) is republished within this many seconds. */
        crlSeconds: z.number().int().min(1).max(86400).default(60),
        /** Lifetime of CRLs (nextUpdate - thisUpdate); they are regenerated at half-life. */
        crlValiditySeconds: z.number().int().min(300).max(30 * 86400).default(86400),
        /** Lifetime of pre-signed OCSP responses (RFC 5019). */
        ocspValiditySeconds: z.number().int().min(60).max(7 * 86400).default(86400),
        /**
         * Signed OCSP answers each serving process keeps in memory (least recently used go first): about
         * 1 KB each, so the default costs up to ~20 MB per process. Misses are answered from the database.
         */
        ocspCacheEntries: z.number().int().min(100).max(10_000_000).default(20_000),
        /**
         * CRLs of at most this many entries keep their DER in each serving process once made or first served; larger
         * ones are read from the database when asked for and kept 30 s (docs/crl.md, "What a process holds").
         */
        crlHeldEntries: z.number().int().min(1_000).max(10_000_000).default(defaultHeldEntries),
        /** The DER of those CRLs held in all per process, in octets (least recently served dropped first). */
        crlHeldBytes: z.number().int().min(1024 * 1024).max(4 * 1024 * 1024 * 1024).default(defaultHeldBytes),
      })
      .strict()
      .default({
        ocspSeconds: 5,
        crlSeconds: 60,
        crlValiditySeconds: 86400,
        ocspValiditySeconds: 86400,
        ocspCacheEntries: 20_000,
        crlHeldEntries: defaultHeldEntries,
        crlHeldBytes: defaultHeldBytes,
      }),
    /** The ACME server (RFC 8555): one directory per profile enrollable over ACME that accepts DNS names or IP addresses. */
    acme: acmeConfigSchema.default(acmeConfigSchema.parse({})),
    /**
     * M-of-N approvals (src/quorum): operations that need a quorum run with approvals from `threshold`
     * of the registered custodians. Absent with no custodians registered: single-operator mode.
     */
    quorum: z.object({ threshold: z.number().int().min(1).max(255) }).strict().optional(),
    /** Where CA keys live; absent = software (older trellis.json files parse unchanged). */
    keystore: keystoreConfigSchema.default({ type: 'software' }),
    /** Directory of profile YAML files, relative to the data directory. */
    profilesDir: z.string().default('profiles'),
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Largest accepted request body, bytes. */
        bodyLimitBytes: z.number().int().min(1024).max(10 * 1024 * 1024).default(64 * 1024),
        /**
         * Proxies (CIDR blocks or addresses) whose X-Forwarded-For names the client address
         * (rate limits, access log); checked when `serve` starts. URLs never come from forwarded headers.
         */
        trustedProxies: z.array(z.string().min(1).max(64)).max(256).default([]),
        /** What one client may ask of the public endpoints (docs/operations.md, "Limits"). */
        limits: serverLimitsSchema.default(serverLimitsSchema.parse({})),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8080, bodyLimitBytes: 64 * 1024, trustedProxies: [], limits: serverLimitsSchema.parse({}) }),
  })
  .strict();

export type InstanceConfig = z.infer<typeof instanceConfigSchema>;

export { configFile };

/** Reads and validates the config; a missing file says to run `trellis init`. */
export function readInstanceConfig(dataDir: string): InstanceConfig {
  const file = configFile(dataDir);
  // It may name a database URL with a password: private, like everything in the data directory.
  makePrivate(file);
  warnIfSharedDir(dataDir);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PkiError('invalidConfig', `no Trellis instance in ${dataDir} (run \`trellis init\`)`, { cause: err });
    throw new PkiError('invalidConfig', `${file}: not valid JSON`, { cause: err });
  }
  const parsed = instanceConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PkiError('invalidConfig', `${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Writes a new config; refuses to overwrite one. */
export function writeInstanceConfig(dataDir: string, config: InstanceConfig): void {
  makePrivateDir(dataDir);
  writePrivateFile(configFile(dataDir), JSON.stringify(config, null, 2) + '\n', 'wx');
}

/** Database URL for an instance: explicit, else `file:<data>/trellis.db`. */
export function databaseUrlOf(dataDir: string, config: Pick<InstanceConfig, 'databaseUrl'>): string {
  return config.databaseUrl ?? `file:${path.resolve(dataDir, 'trellis.db')}`;
}
