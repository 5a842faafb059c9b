/**
 * `trellis quorum request|approve|submit|show`: M-of-N approvals of an
 * operation (docs/ceremonies/quorum.md has the ceremony).
 *
 * Approvals are collected in one of two ways. On terminals that reach the
 * instance's database, each custodian runs `quorum approve --request ID
 * --custodian NAME` and types their passphrase (or gives `--key FILE`). Away
 * from it, a key custodian signs a copy of the request (`quorum show --json`
 * saved as a file) with `quorum approve --request-file FILE --custodian NAME
 * --key FILE --out approval.json`, and the operator records the file on the
 * CA machine with `quorum submit --in approval.json`.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { parse, parseDurationFlag, required, UsageError } from '../../cli/args.js';
import { systemClock } from '../../clock/clock.js';
import { PkiError } from '../../errors/pki-error.js';
import { approvalFileText, parseApprovalFile } from '../../quorum/approval-file.js';
import { signApproval } from '../../quorum/credential.js';
import { isQuorumOperation, operationOf, quorumOperations, type QuorumOperation } from '../../quorum/operation.js';
import type { QuorumRequestView } from '../../quorum/quorum.js';
import { openInstance } from '../instance.js';
import { quorumOf } from '../quorum.js';
import { actorOf, dataDirOf, out } from './common.js';
import { custodianPassphraseFor } from './custodian/passphrase.js';

const usage = `usage: trellis quorum request --op OP [--param KEY=VALUE ...] [--ttl 1h]
       trellis quorum approve --request ID --custodian NAME [--key FILE [--out approval.json]] [--passphrase-file FILE]
       trellis quorum approve --request-file request.json --custodian NAME --key FILE --out approval.json
       trellis quorum submit --in approval.json
       trellis quorum show --request ID [--json]
operations: ${quorumOperations.join(', ')}`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'request') return request(rest);
  if (sub === 'approve') return approve(rest);
  if (sub === 'submit') return submit(rest);
  if (sub === 'show') return show(rest);
  throw new UsageError(usage);
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new PkiError('notFound', `cannot read ${file}`, { cause: err });
  }
}

function paramsOf(pairs: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) throw new UsageError(`--param "${pair}": expected KEY=VALUE (KEY of letters, digits, "_", ".", "-")`);
    if (key in params) throw new UsageError(`--param ${key} is given twice`);
    params[key] = pair.slice(eq + 1);
  }
  return params;
}

const describe = (op: string, params: Record<string, string>) => [op, ...Object.entries(params).map(([k, v]) => `${k}=${v}`)].join(' ');

async function request(argv: string[]): Promise<number> {
  const { values } = parse(argv, { op: { type: 'string' }, param: { type: 'string', multiple: true }, ttl: { type: 'string' } });
  const op = required(values.op, 'op');
  if (!isQuorumOperation(op)) throw new UsageError(`--op must be one of ${quorumOperations.join(', ')}`);
  const params = paramsOf(values.param ?? []);
  const ttlSeconds = parseDurationFlag(values.ttl ?? '1h', 'ttl');
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const r = await quorumOf(instance).request(op, params, { ttlSeconds, actor: actorOf() });
    const o = out(values);
    o.result({ id: r.id, op, params, hash: r.hash, expiresAt: r.expiresAt.toISOString() });
    if (!o.json) {
      // stdout carries the id alone, so `REQ=$(trellis quorum request …)` works; the rest goes to stderr.
      process.stdout.write(`${r.id}\n`);
      process.stderr.write(`quorum request ${r.id}: ${describe(op, params)}\n  hash ${r.hash}\n  expires ${r.expiresAt.toISOString()}\n  approve: trellis quorum approve --request ${r.id} --custodian NAME\n`);
    }
    return 0;
  } finally {
    await instance.close();
  }
}

/** What a custodian signs away from the database: `quorum show --json` saved as a file; the hash is recomputed from op and params. */
const requestFileSchema = z.object({ id: z.string().min(1), op: z.string(), params: z.record(z.string(), z.string()), hash: z.string(), expiresAt: z.string().datetime() });

function requestFromFile(file: string): { id: string; op: QuorumOperation; params: Record<string, string>; hash: string; expiresAt: Date } {
  let raw: unknown;
  try {
    raw = JSON.parse(readText(file));
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('malformed', `${file}: not JSON (save the output of trellis quorum show --request ID --json)`, { cause: err });
  }
  const r = requestFileSchema.safeParse(raw);
  if (!r.success) throw new PkiError('malformed', `${file}: not a quorum request (save the output of trellis quorum show --request ID --json)`);
  if (!isQuorumOperation(r.data.op)) throw new PkiError('malformed', `${file}: unknown operation "${r.data.op}"`);
  if (operationOf(r.data.op, r.data.params).hash !== r.data.hash) throw new PkiError('malformed', `${file}: its hash is not the hash of its operation and parameters`);
  return { ...r.data, op: r.data.op, expiresAt: new Date(r.data.expiresAt) };
}

/** Signs with a custodian key file; an encrypted one opens with the custodian's passphrase. */
async function signWith(keyFile: string, flags: { 'passphrase-file'?: string | undefined }, custodian: string, id: string, hash: string): Promise<Buffer> {
  const pem = readText(keyFile);
  const keyPassphrase = pem.includes('ENCRYPTED') ? await custodianPassphraseFor(flags, custodian) : undefined;
  return signApproval(pem, keyPassphrase, id, hash, custodian);
}

async function approve(argv: string[]): Promise<number> {
  const { values } = parse(argv, { request: { type: 'string' }, 'request-file': { type: 'string' }, custodian: { type: 'string' }, key: { type: 'string' }, out: { type: 'string' } });
  const custodian = required(values.custodian, 'custodian');
  if (!!values.request === !!values['request-file']) throw new UsageError('give --request ID (on the instance) or --request-file FILE (away from it)');
  if (values.out && !values.key) throw new UsageError('--out writes a signed approval: it needs --key FILE');
  if (values['request-file'] && !values.out) throw new UsageError('--request-file signs away from the instance: give --key FILE and --out approval.json');
  const o = out(values);
  if (values['request-file']) {
    const req = requestFromFile(values['request-file']);
    if (systemClock.now() >= req.expiresAt) throw new PkiError('forbidden', `request ${req.id} expired at ${req.expiresAt.toISOString()}`);
    process.stderr.write(`approving request ${req.id}: ${describe(req.op, req.params)}\n  hash ${req.hash}\n`);
    const signature = await signWith(values.key!, values, custodian, req.id, req.hash);
    writeApproval(values.out!, approvalFileText({ request: req.id, custodian, operation: operationOf(req.op, req.params).operation, hash: req.hash, signature: signature.toString('base64') }));
    o.result({ request: req.id, custodian, out: values.out });
    o.say(`approval of ${req.id} by "${custodian}" written to ${values.out}; record it with trellis quorum submit --in ${values.out}`);
    return 0;
  }
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const quorum = quorumOf(instance);
    const req = await quorum.show(values.request!);
    process.stderr.write(`approving request ${req.id}: ${describe(req.op, req.params)}\n  hash ${req.hash}\n`);
    if (values.out) {
      const signature = await signWith(values.key!, values, custodian, req.id, req.hash);
      writeApproval(values.out, approvalFileText({ request: req.id, custodian, operation: operationOf(req.op as QuorumOperation, req.params).operation, hash: req.hash, signature: signature.toString('base64') }));
      o.result({ request: req.id, custodian, out: values.out });
      o.say(`approval of ${req.id} by "${custodian}" written to ${values.out}; record it with trellis quorum submit --in ${values.out}`);
      return 0;
    }
    const proof = values.key ? { signature: await signWith(values.key, values, custodian, req.id, req.hash) } : { passphrase: await custodianPassphraseFor(values, custodian) };
    const { approvals } = await quorum.approve(req.id, custodian, proof, actorOf());
    o.result({ request: req.id, custodian, approvals });
    o.say(`request ${req.id} approved by "${custodian}" (${approvals} approval${approvals === 1 ? '' : 's'}${req.threshold ? `, ${req.threshold} needed` : ''})`);
    return 0;
  } finally {
    await instance.close();
  }
}

function writeApproval(file: string, text: string): void {
  try {
    fs.writeFileSync(file, text, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PkiError('conflict', `${file} already exists`, { cause: err });
    throw new PkiError('invalidConfig', `cannot write ${file}`, { cause: err });
  }
}

async function submit(argv: string[]): Promise<number> {
  const { values } = parse(argv, { in: { type: 'string' } });
  const file = required(values.in, 'in');
  const approval = parseApprovalFile(readText(file), file);
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const { approvals } = await quorumOf(instance).submit(approval, actorOf());
    const o = out(values);
    o.result({ request: approval.request, custodian: approval.custodian, approvals });
    o.say(`request ${approval.request} approved by "${approval.custodian}" (${approvals} approval${approvals === 1 ? '' : 's'})`);
    return 0;
  } finally {
    await instance.close();
  }
}

function statusOf(v: QuorumRequestView, now: Date): string {
  if (v.usedAt) return 'used';
  if (now >= v.expiresAt) return 'expired';
  const counting = v.approvals.filter((a) => a.counts).length;
  return v.threshold !== undefined && counting >= v.threshold ? 'approved' : 'pending';
}

async function show(argv: string[]): Promise<number> {
  const { values } = parse(argv, { request: { type: 'string' } });
  const id = required(values.request, 'request');
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const v = await quorumOf(instance).show(id);
    const status = statusOf(v, instance.clock.now());
    const iso = (d: Date | null) => d?.toISOString() ?? null;
    const o = out(values);
    o.result({
      id: v.id, op: v.op, params: v.params, hash: v.hash, status, createdAt: iso(v.createdAt), expiresAt: iso(v.expiresAt), usedAt: iso(v.usedAt),
      threshold: v.threshold ?? null, custodians: v.custodians,
      approvals: v.approvals.map((a) => ({ custodian: a.custodian, approvedAt: iso(a.approvedAt), with: a.with, counts: a.counts })),
    });
    o.say(`request ${v.id}: ${describe(v.op, v.params)}\n  hash ${v.hash}\n  ${status}; created ${iso(v.createdAt)}, expires ${iso(v.expiresAt)}${v.usedAt ? `, used ${iso(v.usedAt)}` : ''}`);
    o.say(`  approvals: ${v.approvals.filter((a) => a.counts).length} of ${v.threshold ?? '(no threshold)'} needed, ${v.custodians} custodian(s)`);
    for (const a of v.approvals) o.say(`    ${a.custodian}  ${a.with}  ${iso(a.approvedAt)}${a.counts ? '' : '  (does not count)'}`);
    return 0;
  } finally {
    await instance.close();
  }
}
