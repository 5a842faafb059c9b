import type { LintRule } from '../types.js';

/** RFC 5280 §4.1.2.1: certificates with extensions MUST be v3. */
export const versionV3: LintRule = {
  id: 'e_version_not_v3',
  source: 'RFC 5280 §4.1.2.1',
  check: ({ cert }) => (cert.version === 2 ? null : `version is v${cert.version + 1}`),
};
