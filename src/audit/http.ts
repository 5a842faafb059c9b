/** Serves the newest signed audit checkpoint at GET /audit/checkpoint (the node:http hot path, no express, no credential). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeCheckpointFile, type CheckpointFile } from './checkpoint.js';

/** The path an outside monitor polls. */
export const auditCheckpointPath = '/audit/checkpoint';

const problem = (status: number, title: string, detail?: string) => JSON.stringify({ type: 'about:blank', title, status, ...(detail ? { detail } : {}) });

/**
 * GET/HEAD `/audit/checkpoint`: 200 with the newest checkpoint as a
 * checkpoint file (docs/audit.md: three PEM blocks, `application/x-pem-file`),
 * never cached; 404 problem+json when none was signed yet. A failure to read
 * it is logged and answered 500 without detail. Returns true when it took the
 * request, false for any other path or method.
 */
export function auditCheckpointHandler(latest: () => Promise<CheckpointFile | null>, log?: (e: Record<string, unknown>) => void): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if ((req.url ?? '').split('?', 1)[0] !== auditCheckpointPath) return false;
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    latest().then(
      (cp) => (cp ? send(200, 'application/x-pem-file', encodeCheckpointFile(cp)) : send(404, 'application/problem+json', problem(404, 'Not Found', 'no audit checkpoint has been signed yet'))),
      (err) => {
        log?.({ level: 'error', msg: 'audit checkpoint not served', reqId: req.requestId, error: err instanceof Error ? err.message : String(err) });
        send(500, 'application/problem+json', problem(500, 'Internal Server Error'));
      },
    );
    return true;
  };
}
