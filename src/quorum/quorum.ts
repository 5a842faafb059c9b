/**
 * M-of-N approvals of operations that matter (issue 11). An operator asks
 * for a request (`request`), custodians approve it (`approve`: a passphrase
 * checked in constant time, or a signature from their key), and the
 * operation calls `requireQuorum` with its exact parameters just before it
 * runs: the request must carry the hash of those parameters, be unexpired
 * and unused, and hold approvals from at least M custodians who are still
 * registered; it is then marked used (compare-and-set), so it never
 * authorizes a second run. Every step and every refusal is audited.
 *
 * M is `quorum.threshold` in trellis.json, N the registered custodians.
 * Without custodians and without a threshold, `requireQuorum` lets the
 * operation run (single-operator mode) and audits `quorum.not_applied`.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';
import type { ApprovalFile } from './approval-file.js';
import { approvalMessage, checkProof, parseCredential, verifySignature, type ApprovalProof } from './credential.js';
import { CustodianRegistry, type CustodianDeps } from './custodians.js';
import { operationOf, sha256Hex, type OperationParams, type QuorumOperation } from './operation.js';
import type { CustodianRow, QuorumRepository, QuorumRequestRow } from './ports.js';

/** `text` as one POSIX shell word, so the command a refusal prints can be pasted: as it is, or single-quoted. */
export const shellWord = (text: string): string => (/^[A-Za-z0-9_.,:=/@%+-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`);

/** Shortest and longest life of a request. */
export const minRequestTtlSeconds = 60;
export const maxRequestTtlSeconds = 7 * 86400;

export interface QuorumDeps extends CustodianDeps {
  requests: QuorumRepository;
  /** `quorum.threshold` of the instance config (M); undefined when none is configured. */
  threshold: number | undefined;
}

/** A request as `quorum show` gives it. */
export interface QuorumRequestView {
  id: string;
  op: string;
  params: Record<string, string>;
  hash: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  approvals: { custodian: string; approvedAt: Date; with: 'passphrase' | 'key'; counts: boolean }[];
  /** M (undefined without a configured threshold) and N now. */
  threshold: number | undefined;
  custodians: number;
}

/** What {@link QuorumService.requireQuorum} decided. */
export type QuorumOutcome =
  | { applied: false; reason: string }
  | { applied: true; requestId: string; hash: string; approvedBy: string[]; threshold: number; custodians: number };

/** Options of {@link QuorumService.requireQuorum}. */
export interface RequireQuorumOptions {
  /** The quorum request that approves this operation (`--quorum-request ID`); needed whenever a quorum applies. */
  requestId?: string | undefined;
  /** Who runs the operation, for the audit log. */
  actor: string;
}

/** Requests, approvals and the quorum check. */
export class QuorumService {
  readonly custodians: CustodianRegistry;
  readonly #d: QuorumDeps;
  constructor(deps: QuorumDeps) {
    this.#d = deps;
    this.custodians = new CustodianRegistry(deps);
  }

  /** Opens a request for `op` with `params`, valid for `ttlSeconds`; returns its id and hash. */
  async request(op: QuorumOperation, params: OperationParams, opts: { ttlSeconds: number; actor: string }): Promise<{ id: string; hash: string; operation: string; expiresAt: Date }> {
    if (!Number.isInteger(opts.ttlSeconds) || opts.ttlSeconds < minRequestTtlSeconds || opts.ttlSeconds > maxRequestTtlSeconds) {
      throw new PkiError('malformed', `a quorum request lives between ${minRequestTtlSeconds}s and ${maxRequestTtlSeconds / 86400}d`);
    }
    const { operation, hash } = operationOf(op, params);
    const id = `qr_${(this.#d.randomBytes ?? nodeRandomBytes)(12).toString('hex')}`;
    const createdAt = this.#d.clock.now();
    const expiresAt = new Date(createdAt.getTime() + opts.ttlSeconds * 1000);
    await this.#d.requests.insertRequest({ id, operation, hash, createdAt, expiresAt });
    await this.#d.audit.record('quorum.requested', opts.actor, { request: id, op, params, hash, expiresAt: expiresAt.toISOString() });
    return { id, hash, operation, expiresAt };
  }

  /** A request with its approvals and whether each counts now. */
  async show(id: string): Promise<QuorumRequestView> {
    const req = await this.#load(id);
    const active = await this.custodians.active();
    const counting = new Set(this.#counting(req, active));
    const { op, params } = JSON.parse(req.operation) as { op: string; params: Record<string, string> };
    return {
      id: req.id,
      op,
      params,
      hash: req.hash,
      createdAt: req.createdAt,
      expiresAt: req.expiresAt,
      usedAt: req.usedAt,
      approvals: req.approvals.map((a) => ({ custodian: a.custodian, approvedAt: a.approvedAt, with: a.signature === null ? 'passphrase' : 'key', counts: counting.has(a.custodian) })),
      threshold: this.#d.threshold,
      custodians: active.length,
    };
  }

  /**
   * Records `custodian`'s approval of request `requestId` once `proof` checks
   * out. Refused: an unknown, expired or used request; an unknown or removed
   * custodian; a second approval by the same custodian (`conflict`); a wrong
   * passphrase or a signature that does not verify (`unauthorized`, audited).
   */
  async approve(requestId: string, custodian: string, proof: ApprovalProof, actor: string): Promise<{ approvals: number }> {
    const req = await this.#load(requestId);
    this.#assertOpen(req);
    const row = await this.#d.custodians.find(custodian);
    if (!row) throw new PkiError('notFound', `no custodian "${custodian}"`);
    if (row.removedAt) throw new PkiError('forbidden', `custodian "${custodian}" was removed at ${row.removedAt.toISOString()}`);
    if (req.approvals.some((a) => a.custodian === custodian)) throw new PkiError('conflict', `custodian "${custodian}" already approved request ${requestId}`);
    const credential = parseCredential(custodian, row.credential);
    if (!(await checkProof(this.#d.kdf, custodian, credential, proof, approvalMessage(req.id, req.hash, custodian)))) {
      const reason = 'passphrase' in proof ? 'wrong passphrase' : 'signature does not verify';
      await this.#d.audit.record('quorum.approval_refused', actor, { request: requestId, custodian, reason });
      throw new PkiError('unauthorized', `custodian "${custodian}": ${reason} for request ${requestId}`);
    }
    const signature = 'signature' in proof ? proof.signature.toString('base64') : null;
    await this.#d.requests.insertApproval(requestId, { custodian, approvedAt: this.#d.clock.now(), signature });
    await this.#d.audit.record('quorum.approved', actor, { request: requestId, custodian, hash: req.hash, with: signature === null ? 'passphrase' : 'key' });
    return { approvals: req.approvals.length + 1 };
  }

  /** Records an approval file (see approval-file.ts): as {@link approve}, with its signature; `forbidden` when it is for another operation. */
  async submit(file: ApprovalFile, actor: string): Promise<{ approvals: number }> {
    const req = await this.#load(file.request);
    if (file.hash !== req.hash) throw new PkiError('forbidden', `the approval is for operation ${file.hash}, request ${req.id} is ${req.hash}`);
    return this.approve(req.id, file.custodian, { signature: Buffer.from(file.signature, 'base64') }, actor);
  }

  /**
   * What an operation that needs a quorum calls just before it runs, with
   * exactly the parameters it is about to use. Passes when request
   * `opts.requestId` carries the hash of `{ op, params }`, is unexpired and
   * unused, and holds approvals from at least M registered custodians; then
   * marks it used so it cannot be replayed. Without custodians and without
   * `quorum.threshold` it passes and audits `quorum.not_applied`. Refusals are
   * PkiErrors (`forbidden`: no request, another operation, expired, too few
   * approvals; `conflict`: already used; `notFound`; `invalidConfig`: M > N,
   * or custodians without a threshold), each audited as `quorum.refused`.
   */
  async requireQuorum(op: QuorumOperation, params: OperationParams, opts: RequireQuorumOptions): Promise<QuorumOutcome> {
    return this.#checked(op, params, opts, true);
  }

  /**
   * Every check of {@link requireQuorum}, without using the request up: a
   * command calls it before it asks for any secret (so an operation without
   * approvals stops at once), then `use()` once the secrets are verified, just
   * before it acts (so a mistyped passphrase does not cost the approvals).
   * `use()` checks everything again and marks the request used.
   */
  async checkQuorum(op: QuorumOperation, params: OperationParams, opts: RequireQuorumOptions): Promise<{ use(): Promise<QuorumOutcome> }> {
    await this.#checked(op, params, opts, false);
    return { use: () => this.requireQuorum(op, params, opts) };
  }

  async #checked(op: QuorumOperation, params: OperationParams, opts: RequireQuorumOptions, use: boolean): Promise<QuorumOutcome> {
    const { hash } = operationOf(op, params);
    try {
      return await this.#require(op, params, hash, opts, use);
    } catch (err) {
      if (err instanceof PkiError) await this.#d.audit.record('quorum.refused', opts.actor, { op, params, hash, request: opts.requestId ?? null, reason: err.message });
      throw err;
    }
  }

  async #require(op: QuorumOperation, params: OperationParams, hash: string, opts: RequireQuorumOptions, use: boolean): Promise<QuorumOutcome> {
    const active = await this.custodians.active();
    const m = this.#d.threshold;
    const n = active.length;
    if (m === undefined) {
      if (n > 0) throw new PkiError('invalidConfig', `${n} custodian(s) registered but trellis.json sets no quorum.threshold: set it to M (1 to ${n})`);
      const reason = 'no custodians registered and no quorum configured (single-operator mode)';
      if (use) await this.#d.audit.record('quorum.not_applied', opts.actor, { op, params, hash, reason });
      return { applied: false, reason };
    }
    if (m > n) throw new PkiError('invalidConfig', `quorum.threshold is ${m} but only ${n} custodian(s) are registered`);
    if (!opts.requestId) {
      const flags = Object.entries(params).map(([k, v]) => ` --param ${shellWord(`${k}=${v}`)}`).join('');
      throw new PkiError('forbidden', `${op} needs approvals from ${m} of ${n} custodians: run trellis quorum request --op ${op}${flags}, have them approve it, then pass --quorum-request ID`);
    }
    const req = await this.#load(opts.requestId);
    if (req.hash !== hash) throw new PkiError('forbidden', `request ${req.id} approves another operation (${req.operation}), not this one`);
    this.#assertOpen(req);
    const approvedBy = this.#counting(req, active);
    if (approvedBy.length < m) throw new PkiError('forbidden', `request ${req.id} has ${approvedBy.length} of the ${m} approvals it needs${approvedBy.length ? ` (${approvedBy.join(', ')})` : ''}`);
    if (!use) return { applied: true, requestId: req.id, hash, approvedBy, threshold: m, custodians: n };
    if (!(await this.#d.requests.markUsed(req.id, this.#d.clock.now()))) throw new PkiError('conflict', `request ${req.id} was used or expired meanwhile`);
    await this.#d.audit.record('quorum.satisfied', opts.actor, { request: req.id, op, params, hash, threshold: m, custodians: n, approvedBy });
    return { applied: true, requestId: req.id, hash, approvedBy, threshold: m, custodians: n };
  }

  /** The request, checked against its own hash (`keyIntegrity` when the stored operation was edited). */
  async #load(id: string): Promise<QuorumRequestRow> {
    const req = await this.#d.requests.find(id);
    if (!req) throw new PkiError('notFound', `no quorum request "${id}"`);
    if (sha256Hex(req.operation) !== req.hash) throw new PkiError('keyIntegrity', `quorum request ${id}: stored operation does not match its hash`);
    return req;
  }

  #assertOpen(req: QuorumRequestRow): void {
    if (req.usedAt) throw new PkiError('conflict', `request ${req.id} was already used at ${req.usedAt.toISOString()}`);
    if (this.#d.clock.now() >= req.expiresAt) throw new PkiError('forbidden', `request ${req.id} expired at ${req.expiresAt.toISOString()}`);
  }

  /**
   * Custodians whose approval of `req` counts: still registered, and, for a
   * key custodian, with a stored signature that verifies (a row written into
   * the database by hand does not count for them).
   */
  #counting(req: QuorumRequestRow, active: CustodianRow[]): string[] {
    const byName = new Map(active.map((c) => [c.name, c]));
    return req.approvals
      .filter((a) => {
        const c = byName.get(a.custodian);
        if (!c) return false;
        const cred = parseCredential(c.name, c.credential);
        if (cred.type === 'passphrase') return a.signature === null;
        return a.signature !== null && verifySignature(cred, Buffer.from(a.signature, 'base64'), approvalMessage(req.id, req.hash, c.name));
      })
      .map((a) => a.custodian);
  }
}
