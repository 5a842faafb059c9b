/**
 * Reading the console's only request bodies: small HTML form posts
 * (application/x-www-form-urlencoded), read before anything else is done.
 */
import type { IncomingMessage } from 'node:http';
import { PkiError } from '../errors/pki-error.js';

/** The largest form body: a token is about 50 characters; 4 KiB leaves room for a browser's extra fields. */
export const formLimitBytes = 4096;

/**
 * The fields of a urlencoded form body of at most `limit` bytes.
 * `unsupportedMediaType` for another type, `payloadTooLarge` past the limit
 * (by Content-Length or while reading), `malformed` when the request ends early.
 */
export async function readForm(req: IncomingMessage, limit = formLimitBytes): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new PkiError('unsupportedMediaType', 'send the form as application/x-www-form-urlencoded');
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') throw new PkiError('unsupportedMediaType', 'a form body is not sent with a Content-Encoding');
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new PkiError('payloadTooLarge', `the form body is over ${limit} bytes`);
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop reading, but leave the socket open: the 413 is sent on it, with Connection: close.
        req.off('data', onData);
        req.pause();
        reject(new PkiError('payloadTooLarge', `the form body is over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => (req.complete ? resolve(Buffer.concat(chunks)) : reject(new PkiError('malformed', 'the request ended before its body'))));
    req.once('aborted', () => reject(new PkiError('malformed', 'the request ended before its body')));
    req.once('error', (err) => reject(new PkiError('malformed', 'the request body could not be read', { cause: err })));
  });
  return new URLSearchParams(body.toString('utf8'));
}
