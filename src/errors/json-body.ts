/**
 * A request body read whole, parsed as express.json({ strict: true }) parses
 * it, for the routes that read their body without body-parser (ACME's POSTs,
 * the hot issuance route): UTF-8 with a leading BOM dropped; an empty body is
 * `{}`; a body whose first character is not `{` or `[`, or that does not
 * parse, is `malformed` (the error body-parser's failure maps to).
 */
import { PkiError } from './pki-error.js';

export function parseStrictJson(bytes: Buffer): unknown {
  const decoded = bytes.toString('utf8');
  const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
  if (text.length === 0) return {};
  // trimStart drops more than RFC 8259 §2's four blanks, but JSON.parse refuses the others anyway: the same outcome.
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') throw new PkiError('malformed', 'request body is not valid JSON');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PkiError('malformed', 'request body is not valid JSON', { cause: err });
  }
}
