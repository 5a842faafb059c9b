import { inspect } from 'node:util';
import { expect, test } from 'vitest';
import { SealedPin } from './pkcs11-pin-seal.js';

test('SealedPin: opens to the PIN in a new Buffer; inspection and JSON never show it; wiped, it opens no more', () => {
  const pin = Buffer.from('token-pin-7391', 'utf8');
  const sealed = new SealedPin(pin);
  pin.fill(0);
  const opened = sealed.open();
  expect(opened.toString('utf8')).toBe('token-pin-7391');
  opened.fill(0);
  // A second open is a new Buffer: wiping one leaves the sealed PIN intact.
  expect(sealed.open().toString('utf8')).toBe('token-pin-7391');
  expect(inspect(sealed, { showHidden: true, depth: 5 })).toBe('SealedPin(sealed)');
  expect(JSON.stringify({ sealed })).toBe('{"sealed":{"pin":"sealed"}}');
  sealed.wipe();
  expect(() => sealed.open()).toThrow(expect.objectContaining({ type: 'forbidden' }));
  expect(inspect(sealed)).toBe('SealedPin(wiped)');
});
