/** PEM (RFC 7468) encoding and strict decoding. */
import { PkiError } from '../errors/pki-error.js';

/** Encodes DER as PEM with 64-character lines. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

const block = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;

/** All PEM blocks in `text`, in order. */
export function pemBlocks(text: string): { label: string; der: Buffer }[] {
  const out: { label: string; der: Buffer }[] = [];
  for (const m of text.matchAll(block)) {
    const b64 = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new PkiError('malformed', `PEM ${m[1]} block has invalid base64`);
    out.push({ label: m[1]!, der: Buffer.from(b64, 'base64') });
  }
  return out;
}

/**
 * Accepts either PEM with one of `labels` or raw DER (when `input` is a Buffer
 * that does not look like PEM). A PEM with another label is refused, naming it.
 */
export function derFromPemOrDer(input: Buffer | string, labels: string[], what: string): Buffer {
  const text = typeof input === 'string' ? input : input.subarray(0, 64).toString('latin1').includes('-----BEGIN') ? input.toString('latin1') : null;
  if (text === null) return input as Buffer;
  const blocks = pemBlocks(text);
  if (blocks.length === 0) throw new PkiError('malformed', `${what}: no PEM block found`);
  const first = blocks[0]!;
  if (!labels.includes(first.label)) throw new PkiError('malformed', `${what}: expected PEM label ${labels.join(' or ')}, got "${first.label}"`);
  return first.der;
}
