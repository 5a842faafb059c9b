/**
 * Wiring of the quorum (src/quorum): the custodian passphrase KDF is the
 * software keystore's scrypt (its default cost and bounds), M comes from
 * trellis.json, storage and audit from the instance. Commands that need a
 * quorum call {@link requireQuorum} with the exact parameters they are about
 * to use, and take `--quorum-request ID` ({@link quorumRequestFlag}).
 */
import { scrypt as scryptCb } from 'node:crypto';
import { promisify } from 'node:util';
import { defaultScrypt, scryptOptions, scryptParamsOk } from '../keys/envelope.js';
import type { PassphraseKdf } from '../quorum/credential.js';
import type { OperationParams, QuorumOperation } from '../quorum/operation.js';
import { QuorumService, type QuorumOutcome } from '../quorum/quorum.js';
import type { Instance } from './instance.js';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number, options: object) => Promise<Buffer>;

/** scrypt with the keystore's parameters and bounds (keys/envelope.ts). */
export const keystoreScrypt: PassphraseKdf = {
  params: defaultScrypt,
  paramsOk: scryptParamsOk,
  derive: (passphrase, salt, params) => scrypt(passphrase, salt, 32, scryptOptions(params)),
};

/** The quorum of an open instance. */
export function quorumOf(instance: Pick<Instance, 'store' | 'audit' | 'clock' | 'config'>): QuorumService {
  return new QuorumService({
    custodians: instance.store.custodians,
    requests: instance.store.quorum,
    audit: instance.audit,
    clock: instance.clock,
    kdf: keystoreScrypt,
    threshold: instance.config.quorum?.threshold,
  });
}

/** Flag of the commands that need a quorum: the id of the approved request. */
export const quorumRequestFlag = { 'quorum-request': { type: 'string' } } as const;

/**
 * The quorum gate of a command, in two steps (QuorumService.checkQuorum):
 * call it once the inputs are parsed and checked, before any secret is read;
 * call `use()` once the secrets are verified, just before a key is touched:
 *
 * ```ts
 * const quorum = await quorumGate(instance, 'key.destroy', { ca: caId }, { requestId: values['quorum-request'], actor: actorOf() });
 * const keystore = await custodyOf(...); // secrets, checked
 * await quorum.use();
 * ```
 */
export function quorumGate(instance: Pick<Instance, 'store' | 'audit' | 'clock' | 'config'>, op: QuorumOperation, params: OperationParams, opts: { requestId?: string | undefined; actor: string }): Promise<{ use(): Promise<QuorumOutcome> }> {
  return quorumOf(instance).checkQuorum(op, params, opts);
}

/** Checks the quorum for `op` with exactly `params` and uses the request up at once (see QuorumService.requireQuorum). */
export function requireQuorum(instance: Pick<Instance, 'store' | 'audit' | 'clock' | 'config'>, op: QuorumOperation, params: OperationParams, opts: { requestId?: string | undefined; actor: string }): Promise<QuorumOutcome> {
  return quorumOf(instance).requireQuorum(op, params, opts);
}
