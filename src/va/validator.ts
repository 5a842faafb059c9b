/**
 * The validation authority: `createValidator` parses the settings once, and
 * each `validate` call runs one challenge under its own budget, DNS resolver
 * and socket set, all torn down when it ends. Only the RA calls this.
 */
import { systemClock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import { createAddressPolicy } from './address-policy.js';
import { Budget } from './budget.js';
import type { ConnectContext } from './connect.js';
import { describeError, ValidationFailure } from './failure.js';
import { validateHttp01 } from './http-01.js';
import { parseRequest } from './request.js';
import { createLookup, parseResolverAddress } from './resolve.js';
import { validateTlsAlpn01 } from './tls-alpn-01.js';
import type { ChallengeValidator, ValidationRecord, ValidationRequest, ValidationResult, ValidatorOptions } from './types.js';

/** The defaults of {@link ValidatorOptions}. */
export const validatorDefaults = {
  http01Port: 80,
  tlsAlpn01Port: 443,
  timeoutMs: 10_000,
  connectTimeoutMs: 5_000,
  maxRedirects: 10,
  maxBodyBytes: 8 * 1024,
} as const;

function integer(name: string, v: number | undefined, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < min || v > max) throw new PkiError('invalidConfig', `validator option ${name} must be an integer from ${min} to ${max}, not ${v}`);
  return v;
}

/**
 * Builds a validator. Throws `invalidConfig` for a bad port, limit, resolver
 * address or `allow` CIDR, so a misconfigured server fails at start.
 */
export function createValidator(opts: ValidatorOptions = {}): ChallengeValidator {
  const d = validatorDefaults;
  const http01Port = integer('http01Port', opts.http01Port, d.http01Port, 1, 65535);
  const tlsAlpn01Port = integer('tlsAlpn01Port', opts.tlsAlpn01Port, d.tlsAlpn01Port, 1, 65535);
  const timeoutMs = integer('timeoutMs', opts.timeoutMs, d.timeoutMs, 1, 600_000);
  const connectTimeoutMs = integer('connectTimeoutMs', opts.connectTimeoutMs, d.connectTimeoutMs, 1, 600_000);
  const maxRedirects = integer('maxRedirects', opts.maxRedirects, d.maxRedirects, 0, 100);
  const maxBodyBytes = integer('maxBodyBytes', opts.maxBodyBytes, d.maxBodyBytes, 1, 1024 * 1024);
  const resolver = opts.resolver === undefined ? undefined : parseResolverAddress(opts.resolver);
  const policy = createAddressPolicy(opts.allow ?? []);
  const clock = opts.clock ?? systemClock;
  const http01 = { httpPort: http01Port, httpsPort: tlsAlpn01Port, maxRedirects, maxBodyBytes };

  async function validate(req: ValidationRequest): Promise<ValidationResult> {
    const records: ValidationRecord[] = [];
    const budget = new Budget(timeoutMs);
    const dns = createLookup(resolver, budget);
    const ctx: ConnectContext = { budget, policy, lookup: dns.lookup, connectTimeoutMs, records };
    try {
      const { type, target, token, keyAuthorization } = parseRequest(req);
      const address =
        type === 'http-01'
          ? await validateHttp01(ctx, target, token, keyAuthorization, http01)
          : await validateTlsAlpn01(ctx, target, keyAuthorization, tlsAlpn01Port);
      return { status: 'valid', validatedAt: clock.now(), address, records };
    } catch (err) {
      if (err instanceof ValidationFailure) return { status: 'invalid', error: { type: err.type, detail: err.message }, records };
      // Not a remote failure: a fault in the validator itself.
      throw new PkiError('serverInternal', `challenge validation failed unexpectedly: ${describeError(err)}`, { cause: err });
    } finally {
      dns.close();
      budget.close();
    }
  }

  return { validate };
}
