/** Role names: four roles, two aliases, everything else refused. */
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { administrators, anyRole, auditReaders, canonicalRole, isRoleName, operators, readers, roleNames, roles } from './roles.js';

describe('canonicalRole', () => {
  test.each([
    ['administrator', 'administrator'],
    ['officer', 'officer'],
    ['auditor', 'auditor'],
    ['enrollment', 'enrollment'],
    ['admin', 'administrator'],
    ['issuer', 'enrollment'],
  ])('%s → %s', (name, role) => {
    expect(isRoleName(name)).toBe(true);
    expect(canonicalRole(name)).toBe(role);
  });

  test.each([['root'], ['Admin'], [''], ['toString'], ['__proto__'], ['administrator ']])('rejects: %j (malformed, naming the six)', (name) => {
    expect(isRoleName(name)).toBe(false);
    let err: unknown;
    try {
      canonicalRole(name);
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, 'malformed')).toBe(true);
    expect((err as Error).message).toContain(roleNames.join(', '));
  });
});

test('the grants nest: least privilege first, the administrator in every set, enrollment in none but anyRole', () => {
  for (const set of [readers, operators, auditReaders, administrators]) {
    expect(set).toContain('administrator');
    expect(set).not.toContain('enrollment');
  }
  expect(operators).not.toContain('auditor');
  expect(auditReaders).not.toContain('officer');
  expect([...anyRole].sort()).toEqual([...roles].sort());
});
