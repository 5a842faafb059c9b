/**
 * Anti-replay nonces (RFC 8555 §6.5). A nonce is minted without touching the
 * database: 6 octets of issue time (ms), 10 random octets, and a 16-octet
 * HMAC-SHA-256 tag over both under a secret every node shares (an instance
 * secret, which the store keeps sealed under the online passphrase: see
 * keys/secret-sealer.ts). Redeeming one
 * checks the tag in constant time and the age, then records it as used in the
 * database, whose primary key makes the second use fail on every node, even
 * under concurrent requests.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../clock/clock.js';
import { PkiError } from '../../errors/pki-error.js';
import type { AcmeNonceRepository, InstanceSecretRepository } from './ports.js';

const bodyBytes = 16;
const tagBytes = 16;
const nonceChars = Math.ceil(((bodyBytes + tagBytes) * 4) / 3);

export class NonceService {
  private constructor(
    private readonly key: Buffer,
    private readonly repo: AcmeNonceRepository,
    private readonly clock: Clock,
    private readonly lifetimeMs: number,
  ) {}

  /** Loads (or creates, once for all nodes) the shared HMAC key. */
  static async open(deps: { secrets: InstanceSecretRepository; nonces: AcmeNonceRepository; clock: Clock; lifetimeSeconds: number }): Promise<NonceService> {
    const key = await deps.secrets.getOrCreate('acme-nonce-hmac', () => randomBytes(32));
    return new NonceService(key, deps.nonces, deps.clock, deps.lifetimeSeconds * 1000);
  }

  private tag(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, tagBytes);
  }

  /** Random bytes drawn 4 KiB at a time: every response carries a nonce, and one small CSPRNG call costs more than the HMAC. */
  private pool = Buffer.alloc(0);
  private poolOffset = 0;

  private random10(): Buffer {
    if (this.poolOffset + 10 > this.pool.length) {
      this.pool = randomBytes(4096);
      this.poolOffset = 0;
    }
    return this.pool.subarray(this.poolOffset, (this.poolOffset += 10));
  }

  /** A fresh nonce (base64url, 43 characters). */
  issue(): string {
    const body = Buffer.allocUnsafe(bodyBytes);
    body.writeUIntBE(this.clock.now().getTime(), 0, 6);
    this.random10().copy(body, 6);
    return Buffer.concat([body, this.tag(body)]).toString('base64url');
  }

  /**
   * Checks a nonce's tag and age without recording it (`badNonce` when they
   * fail; the caller sends a fresh Replay-Nonce): the request that carries it
   * records it with its first write ({@link PendingNonce.with}) or on its own
   * ({@link PendingNonce.record}), before it is answered.
   */
  check(nonce: unknown): PendingNonce {
    if (typeof nonce !== 'string' || nonce.length === 0) throw new PkiError('badNonce', 'the protected header has no "nonce"');
    const raw = nonce.length === nonceChars && /^[A-Za-z0-9_-]+$/.test(nonce) ? Buffer.from(nonce, 'base64url') : Buffer.alloc(0);
    if (raw.length !== bodyBytes + tagBytes) throw new PkiError('badNonce', 'this server did not issue that nonce');
    const body = raw.subarray(0, bodyBytes);
    if (!timingSafeEqual(raw.subarray(bodyBytes), this.tag(body))) throw new PkiError('badNonce', 'this server did not issue that nonce');
    const issuedAt = body.readUIntBE(0, 6);
    const now = this.clock.now().getTime();
    if (now - issuedAt > this.lifetimeMs) throw new PkiError('badNonce', 'the nonce has expired; use the fresh one in Replay-Nonce');
    return new PendingNonce(nonce, new Date(issuedAt + this.lifetimeMs), this.repo);
  }

  /**
   * Resolves once every write of the ACME store made before the call, the
   * redemptions included, is on disk: an answer that follows a write waits
   * for it (see AcmeNonceRepository.durable).
   */
  durable(): Promise<void> {
    return this.repo.durable ? this.repo.durable() : Promise.resolve();
  }

  /** The prune under way, which a call made meanwhile joins. */
  private pruning: Promise<number> | undefined;

  /**
   * Forgets used nonces that can no longer pass the age check; resolves with
   * how many. A call made while one runs (a backlog can outlast the timer's
   * period) joins it and resolves with its count instead of walking the
   * same rows again.
   */
  prune(): Promise<number> {
    return (this.pruning ??= this.repo.prune(this.clock.now()).finally(() => {
      this.pruning = undefined;
    }));
  }
}

const usedBefore = () => new PkiError('badNonce', 'the nonce was already used');

/**
 * A nonce that passed its checks (NonceService.check) and is recorded as
 * used at most once: in the transaction of the request's first write where
 * the store can (SQLite: one savepoint for both, so a replayed request
 * writes nothing), else on its own. A request is answered only once
 * {@link record} resolved; it rejects with `badNonce` for a replay.
 */
export class PendingNonce {
  /** Set once a write took the nonce or it was recorded alone: resolves once recorded, rejects for a replay. */
  private recording: Promise<void> | undefined;

  constructor(
    readonly nonce: string,
    readonly expiresAt: Date,
    private readonly repo: AcmeNonceRepository,
  ) {}

  /**
   * Makes `write`, one call of a store write method, with the nonce recorded
   * in the same transaction; a replay makes it reject with `badNonce` and
   * write nothing. Once the nonce is recorded (or where the store cannot
   * join them) the nonce is recorded first and `write` made after.
   */
  async with<T>(write: () => Promise<T>): Promise<T> {
    if (this.recording || !this.repo.redeemWith) {
      await this.record();
      return write();
    }
    const joined = this.repo.redeemWith(this.nonce, this.expiresAt, write);
    const taken = joined.recorded;
    if (!taken) {
      // The write did not reach the store within the call (a wrapper that awaits first): it is not guarded, so the
      // request fails loudly rather than be answered as if its nonce had been checked with it.
      this.recording = Promise.reject(new Error('ACME store write did not take the request\'s nonce'));
    } else {
      this.recording = taken.then((outcome) => {
        if (outcome === 'used') throw usedBefore();
        // Undone with its write (a constraint, a failed commit): recorded on its own.
        if (outcome === 'undone') return this.recordAlone();
      });
    }
    this.recording.catch(() => {});
    return joined.written;
  }

  /** Records the nonce unless a write took it already; resolves once recorded, `badNonce` for a replay. */
  record(): Promise<void> {
    return (this.recording ??= this.recordAlone());
  }

  private async recordAlone(): Promise<void> {
    if (!(await this.repo.redeem(this.nonce, this.expiresAt))) throw usedBefore();
  }
}
