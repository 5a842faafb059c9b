import type { LintRule } from '../types.js';

/** RFC 5280 §4.2: a certificate MUST NOT include more than one instance of an extension. */
export const extensionUnique: LintRule = {
  id: 'e_extension_duplicate',
  source: 'RFC 5280 §4.2',
  check: ({ cert }) => {
    const seen = new Set<string>();
    for (const e of cert.extensions) {
      if (seen.has(e.oid)) return `extension ${e.oid} appears twice`;
      seen.add(e.oid);
    }
    return null;
  },
};
