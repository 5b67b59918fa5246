import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressRefusal } from './address-guard.js';

const strict = { allowLinkLocal: false, allowLoopback: false, allowPrivate: true };
const lenient = { allowLinkLocal: true, allowLoopback: true, allowPrivate: true };

describe('address guard', () => {
  it('refuses IPv4 link-local (169.254.0.0/16) unless allowed', () => {
    for (const a of ['169.254.0.1', '169.254.1.1', '169.254.255.254']) {
      assert.match(
        addressRefusal(a, strict) ?? '',
        /is link-local \(169\.254\.0\.0\/16\); set verification\.allowLinkLocal/,
        a,
      );
      assert.equal(addressRefusal(a, lenient), undefined, a);
    }
    for (const a of ['169.253.255.255', '169.255.0.1']) assert.equal(addressRefusal(a, strict), undefined, a);
  });

  it('refuses IPv6 link-local (fe80::/10), with or without a zone, unless allowed', () => {
    for (const a of ['fe80::1', 'fe80::1%eth0', 'febf:ffff::1', 'FE80::ABCD']) {
      assert.match(addressRefusal(a, strict) ?? '', /is link-local \(fe80::\/10\)/, a);
      assert.equal(addressRefusal(a, lenient), undefined, a);
    }
    for (const a of ['fec0::1', 'fe7f::1']) assert.equal(addressRefusal(a, strict), undefined, a);
  });

  it('refuses the cloud metadata addresses always, allowLinkLocal or not', () => {
    const cases: Array<[string, RegExp]> = [
      ['169.254.169.254', /cloud instance metadata service/],
      ['169.254.170.2', /AWS ECS task metadata/],
      ['fd00:ec2::254', /AWS instance metadata service over IPv6/],
      ['100.100.100.200', /Alibaba Cloud/],
      ['168.63.129.16', /Azure WireServer/],
    ];
    for (const [a, why] of cases) {
      assert.match(addressRefusal(a, strict) ?? '', why, a);
      assert.match(addressRefusal(a, lenient) ?? '', why, a);
    }
  });

  it('sees through the IPv6 forms that carry an IPv4 address: mapped, compatible, NAT64, 6to4', () => {
    for (const a of [
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '0:0:0:0:0:ffff:a9fe:a9fe',
      '::169.254.169.254',
      '64:ff9b::169.254.169.254',
      '2002:a9fe:a9fe::1',
    ]) {
      const why = addressRefusal(a, lenient) ?? '';
      assert.match(why, /cloud instance metadata service/, a);
      assert.match(why, /carries the IPv4 address 169\.254\.169\.254/, a);
    }
    assert.match(addressRefusal('::ffff:169.254.7.7', strict) ?? '', /link-local \(169\.254\.0\.0\/16\)/);
    assert.equal(addressRefusal('::ffff:169.254.7.7', lenient), undefined);
    assert.equal(addressRefusal('::ffff:10.1.2.3', strict), undefined);
  });

  it('refuses loopback unless allowed, and the unspecified addresses (they connect to this host) always', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
      assert.match(
        addressRefusal(a, strict) ?? '',
        /is a loopback address \(this host\).*; set verification\.allowLoopback to allow it/,
        a,
      );
      assert.equal(addressRefusal(a, lenient), undefined, a);
    }
    for (const a of ['0.0.0.0', '0.1.2.3', '::', '::ffff:0.0.0.0']) {
      assert.match(addressRefusal(a, lenient) ?? '', /is an unspecified address \(it connects to this host\)/, a);
    }
  });

  it('refuses private ranges only with allowPrivate off', () => {
    const publicOnly = { ...strict, allowPrivate: false };
    for (const a of [
      '10.0.0.5',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      'fc00::1',
      'fd12:3456::1',
      '::ffff:10.1.2.3',
    ]) {
      assert.equal(addressRefusal(a, strict), undefined, a);
      assert.match(
        addressRefusal(a, publicOnly) ?? '',
        /is a private address .*; set verification\.allowPrivate to allow it/,
        a,
      );
    }
    for (const a of ['172.32.0.1', '100.128.0.1', '8.8.8.8']) assert.equal(addressRefusal(a, publicOnly), undefined, a);
  });

  it('lets everything else through: public and documentation ranges', () => {
    for (const a of ['8.8.8.8', '2001:db8::1', '203.0.113.9', '2606:4700::1111']) {
      assert.equal(addressRefusal(a, strict), undefined, a);
    }
  });

  it('refuses what is not an address at all: names are resolved by the caller, then judged', () => {
    assert.match(addressRefusal('metadata.google.internal', strict) ?? '', /is not an IP address/);
  });
});
