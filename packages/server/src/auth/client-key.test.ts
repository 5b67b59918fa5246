import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey } from './client-key.js';

describe('client key: who counts as one client for the per-address limits', () => {
  it('an IPv6 address counts by its /64, or the prefix configured', () => {
    assert.equal(clientKey('2001:db8:1:2::1', 64), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff', 64), '2001:db8:1:2::/64');
    assert.notEqual(clientKey('2001:db8:1:3::1', 64), clientKey('2001:db8:1:2::1', 64));
    assert.equal(clientKey('2001:db8:1:3::1', 48), clientKey('2001:db8:1:2::1', 48));
    assert.equal(clientKey('2001:db8::1', 128), '2001:db8::1/128');
    assert.equal(clientKey('fe80::1%eth0', 64), 'fe80::/64');
  });

  it('an IPv4 address counts by itself, also when written as an IPv4-mapped IPv6 address', () => {
    assert.equal(clientKey('10.0.0.1', 64), '10.0.0.1');
    assert.equal(clientKey('::ffff:10.0.0.1', 64), '10.0.0.1');
    assert.notEqual(clientKey('10.0.0.2', 64), clientKey('10.0.0.1', 64));
  });

  it('every loopback address is this one host', () => {
    for (const a of ['127.0.0.1', '127.0.0.2', '127.255.0.11', '::1', '::ffff:127.0.0.5'])
      assert.equal(clientKey(a, 64), 'loopback', a);
  });

  it('what is not an address counts as itself', () => {
    assert.equal(clientKey('unix:/run/muster.sock', 64), 'unix:/run/muster.sock');
  });
});
