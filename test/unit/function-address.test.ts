// The private-address allowance of url downloads: a list is read once, whatever the number of
// downloads and redirects checked against it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allowedAddresses, refusedAddressReason } from '../../lib/function/address.ts';

test('a list is parsed once per array: every download given the same list checks against the same ranges', () => {
  const list = ['10.20.0.0/16', 'fd00::1'];
  const allowed = allowedAddresses(list);
  assert.is(typeof allowed, 'object');
  assert.is(allowedAddresses(list), allowed, 'the second download reuses the parsed list');
  if (typeof allowed === 'string') return;
  assert.is(refusedAddressReason('10.20.3.4', allowed), undefined);
  assert.is(refusedAddressReason('fd00::1', allowed), undefined);
  assert.match(refusedAddressReason('10.21.0.1', allowed) ?? '', 'private (RFC 1918)');
  assert.is(refusedAddressReason('8.8.8.8', allowed), undefined);
});

test('true allows every address, false and undefined public ones only; a bad list is its problem', () => {
  assert.is(refusedAddressReason('169.254.169.254', allowedAddresses(true) as boolean), undefined);
  for (const allowance of [false, undefined]) assert.match(refusedAddressReason('127.0.0.1', allowedAddresses(allowance) as boolean) ?? '', 'loopback');
  assert.match(String(allowedAddresses(['10.0.0.0/8', '10.0.0.0/33'])), '"10.0.0.0/33" is none of these');
});

test.run();
