import { describe, expect, test } from 'vitest';
import { defaultHeldBytes, defaultHeldEntries } from '../crl/held.js';
import { instanceConfigSchema } from './instance-config.js';

const base = { version: 1, baseUrl: 'https://pki.example.test' };

describe('revocation: the CRLs a serving process holds', () => {
  test('absent, the bounds are those of src/crl/held.ts', () => {
    const { revocation } = instanceConfigSchema.parse(base);
    expect(revocation).toMatchObject({ crlHeldEntries: defaultHeldEntries, crlHeldBytes: defaultHeldBytes });
    // A revocation block that names other settings gets them too.
    expect(instanceConfigSchema.parse({ ...base, revocation: { ocspSeconds: 10 } }).revocation).toMatchObject({ crlHeldEntries: 100_000, crlHeldBytes: 64 * 1024 * 1024 });
  });

  test('an operator sets them', () => {
    const { revocation } = instanceConfigSchema.parse({ ...base, revocation: { crlHeldEntries: 5_000, crlHeldBytes: 8 * 1024 * 1024 } });
    expect(revocation).toMatchObject({ crlHeldEntries: 5_000, crlHeldBytes: 8 * 1024 * 1024 });
  });

  test.each([
    ['crlHeldEntries', 999],
    ['crlHeldEntries', 1.5],
    ['crlHeldBytes', 1024],
    ['crlHeldBytes', 5 * 1024 * 1024 * 1024],
  ])('%s = %s is refused', (name, value) => {
    const r = instanceConfigSchema.safeParse({ ...base, revocation: { [name]: value } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['revocation', name]);
  });
});
