import { expect, test } from 'vitest';
import { serverProfile } from '../../../test/helpers/profiles.js';
import { isPkiError } from '../../errors/pki-error.js';
import type { Profile } from '../../profiles/types.js';
import { normaliseIdentifier, orderIdentifiers } from './identifiers.js';

// Any name, any address: the refusals below are not a profile's choice.
const anything: Profile = { ...serverProfile, san: { ...serverProfile.san, maxNames: 10, dns: { patterns: ['.*'], allowWildcard: true }, ip: { cidrs: ['0.0.0.0/0', '::/0'] } } };

function refusal(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    if (isPkiError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

test.each(['127.1', '2130706433', '0x7f.1', '1.2.3.4.5', '0X7F.0x1'])('newOrder rejects dns identifier %s: rejectedIdentifier', (value) => {
  const err = refusal(() => orderIdentifiers([{ type: 'dns', value }], anything));
  expect(err.type).toBe('rejectedIdentifier');
  expect(err.message).toMatch(/IPv4 address/);
  expect(err.subproblems?.[0]?.identifier).toEqual({ type: 'dns', value });
});

test.each(['0.0.0.0', '::', '0:0::0'])('newOrder rejects ip identifier %s, the unspecified address: rejectedIdentifier', (value) => {
  const err = refusal(() => orderIdentifiers([{ type: 'ip', value }], anything));
  expect(err.type).toBe('rejectedIdentifier');
  expect(err.message).toMatch(/unspecified/);
});

test('one bad identifier among good ones: rejectedIdentifier with one subproblem naming it', () => {
  const err = refusal(() => orderIdentifiers([{ type: 'dns', value: 'a1.example' }, { type: 'dns', value: '0x7f.1' }, { type: 'ip', value: '192.0.2.1' }], anything));
  expect(err.type).toBe('rejectedIdentifier');
  expect(err.subproblems?.map((s) => s.identifier?.value)).toEqual(['0x7f.1']);
});

test('accepts: names with digits that are names, and ordinary addresses', () => {
  expect(orderIdentifiers([{ type: 'dns', value: 'a1.example' }, { type: 'dns', value: 'xn--80ak6aa92e.com' }, { type: 'ip', value: '::1' }], anything).map((i) => i.value)).toEqual(['a1.example', 'xn--80ak6aa92e.com', '::1']);
  expect(normaliseIdentifier({ type: 'dns', value: 'Example.COM.' })).toEqual({ type: 'dns', value: 'example.com' });
});
