/**
 * Readiness of a serving process (`GET /readyz`): it answers every request
 * it takes only when the database answers, an issuing CA it holds has an
 * active key, every CRL it serves is within its nextUpdate, and every OCSP
 * responder certificate it signs with is within its validity. Each failed
 * check says why, in words that carry no secret.
 */
import type { KeyState } from '../ca/key-state.js';

export interface ReadinessSources {
  now(): Date;
  /** False while the server starts or shuts down. */
  serving(): boolean;
  /** One trivial query: the key state of every CA (CaRepository.keyStates). */
  keyStates(): Promise<readonly { id: string; keyState: KeyState }[]>;
  /** The issuing CAs whose keys this process holds unlocked. */
  issuers(): readonly { id: string }[];
  /** The CRLs served, one per CA and scope. */
  crls(): readonly { caId: string; scope: string; nextUpdate: Date }[];
  /** The responder certificate in use per issuing CA. */
  responders(): readonly { caId: string; notBefore: Date; notAfter: Date }[];
  /** How long the database query may take (default 2000 ms). */
  databaseTimeoutMs?: number;
  log?: (e: Record<string, unknown>) => void;
}

export const readinessChecks = ['serving', 'database', 'keys', 'crls', 'ocsp'] as const;
export type ReadinessCheck = (typeof readinessChecks)[number];

export interface Readiness {
  ready: boolean;
  /** The checks that failed, each with its reason; empty when ready. */
  failed: { check: ReadinessCheck; reason: string }[];
}

/** Runs every check (all of them, so the answer lists every failure at once); a failure logged names `reqId` when given. */
export async function checkReadiness(s: ReadinessSources, reqId?: string): Promise<Readiness> {
  const failed: Readiness['failed'] = [];
  const now = s.now();
  if (!s.serving()) failed.push({ check: 'serving', reason: 'the server is starting or shutting down' });
  const states = await keyStatesOrReason(s, reqId);
  if (typeof states === 'string') {
    failed.push({ check: 'database', reason: states });
    failed.push({ check: 'keys', reason: 'key states unknown: the database did not answer' });
  } else {
    const active = new Set(states.filter((k) => k.keyState === 'active').map((k) => k.id));
    const held = s.issuers().map((i) => i.id);
    if (!held.some((id) => active.has(id))) {
      failed.push({ check: 'keys', reason: held.length ? `no issuing CA held here has an active key (held: ${held.join(', ')})` : 'no issuing CA key is unlocked' });
    }
  }
  const stale = s.crls().filter((c) => c.nextUpdate.getTime() <= now.getTime());
  if (stale.length) failed.push({ check: 'crls', reason: `CRL past its nextUpdate: ${stale.map((c) => `${c.caId}/${c.scope} (${c.nextUpdate.toISOString()})`).join(', ')}` });
  const responders = s.responders();
  const invalid = responders.filter((r) => r.notBefore.getTime() > now.getTime() || r.notAfter.getTime() <= now.getTime());
  if (responders.length === 0) failed.push({ check: 'ocsp', reason: 'no OCSP responder certificate' });
  else if (invalid.length) {
    failed.push({ check: 'ocsp', reason: `OCSP responder certificate outside its validity: ${invalid.map((r) => `${r.caId} (${r.notBefore.toISOString()} to ${r.notAfter.toISOString()})`).join(', ')}` });
  }
  return { ready: failed.length === 0, failed };
}

/** The key states, or why the database gave none (the error itself goes to the log only: it may name hosts). */
async function keyStatesOrReason(s: ReadinessSources, reqId: string | undefined): Promise<readonly { id: string; keyState: KeyState }[] | string> {
  const ms = s.databaseTimeoutMs ?? 2000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`the database did not answer within ${ms} ms`), ms);
  });
  try {
    return await Promise.race([s.keyStates(), timeout]);
  } catch (err) {
    s.log?.({ level: 'error', msg: 'readiness: database query failed', ...(reqId === undefined ? {} : { reqId }), error: String(err) });
    return 'the database query failed';
  } finally {
    clearTimeout(timer);
  }
}
