import { decodeSubjectAltName } from '../../pki/extensions.js';
import { findExtension } from '../../pki/certificate.js';
import { OID } from '../../pki/oids.js';
import type { LintRule } from '../types.js';

const ldh = /^(\*\.)?(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/;

/**
 * RFC 5280 §4.2.1.6: with an empty subject the SAN MUST be present and
 * critical; SAN MUST NOT be empty; dNSName in preferred name syntax
 * (RFC 1034 §3.5, lower case per CA/B BR §7.1.2.7.12).
 */
export const subjectAltName: LintRule = {
  id: 'e_subject_alt_name_invalid',
  source: 'RFC 5280 §4.2.1.6; CA/B BR §7.1.2.7.12',
  check: ({ cert }) => {
    const ext = findExtension(cert, OID.subjectAltName);
    const emptySubject = cert.subject.length === 0;
    if (!ext) return emptySubject ? 'empty subject and no subjectAltName' : null;
    if (emptySubject && !ext.critical) return 'subjectAltName MUST be critical when the subject is empty';
    const names = decodeSubjectAltName(ext.valueDer);
    if (names.length === 0) return 'empty subjectAltName';
    for (const n of names) {
      if (n.type === 'dns' && (n.value.length > 253 || !ldh.test(n.value))) return `dNSName "${n.value}" is not a valid lower-case host name`;
      if (n.type === 'other') return `unsupported GeneralName ${n.value}`;
    }
    return null;
  },
};
