/** How the console answers: every response carries the security headers (headers.ts). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { problemFor } from '../errors/problem.js';
import { setSecurityHeaders } from './headers.js';

/** Sends a body (none for HEAD) with its type; HTML is never cached. */
export function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  setSecurityHeaders(res, contentType.startsWith('text/html') ? 'no-store' : 'no-cache');
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...headers, 'content-type': contentType, 'content-length': bytes.length });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

/** 303 See Other to a path of the console (after a form post, or to the login page). */
export function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  setSecurityHeaders(res, 'no-store');
  res.writeHead(303, { ...headers, location, 'content-length': 0 });
  res.end();
}

/** An RFC 9457 problem document for `err`; a 5xx names only the request id (its cause goes to the log). */
export function sendProblem(req: IncomingMessage, res: ServerResponse, err: unknown, headers: Record<string, string> = {}): void {
  const doc = problemFor(err, 'api', req.requestId);
  send(req, res, doc.status, 'application/problem+json', JSON.stringify(doc), headers);
  res.locals = { ...res.locals, problem: doc.type };
}

/** 405 with Allow, as a problem document (the error table has no type for it: it is the route's, not the caller's input). */
export function methodNotAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
  const doc = { type: 'about:blank', title: 'Method Not Allowed', status: 405, detail: `${req.method} is not allowed here (allowed: ${allow})` };
  send(req, res, 405, 'application/problem+json', JSON.stringify(doc), { allow });
}

/** Whether the client asked for HTML (a browser's form post) rather than a problem document. */
export const wantsHtml = (req: IncomingMessage): boolean => /\btext\/html\b/.test(req.headers.accept ?? '');
