import net from 'node:net';
import ipaddr from 'ipaddr.js';

const MAPPED_IPV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;
/** IPv6 keys worked out lately: parsing one costs tens of microseconds, and a write asks twice. */
const v6Keys = new Map<string, string>();
const V6_KEYS_MAX = 10_000;

/**
 * Who counts as one client for the per-address limits. Counting by exact address is what a
 * rotating attacker beats: a host usually holds a whole IPv6 /64 and picks any address in it,
 * and every address of 127.0.0.0/8 (and ::1) is this same host. So an IPv6 address counts by
 * its first `ipv6Prefix` bits, an IPv4 address (also written as ::ffff:a.b.c.d) by itself, and
 * every loopback address as one client. What is not an address (a gRPC peer that is a Unix
 * socket) counts as itself.
 */
export function clientKey(address: string, ipv6Prefix: number): string {
  const v4 = MAPPED_IPV4.exec(address)?.[1] ?? address;
  if (net.isIPv4(v4)) return v4.startsWith('127.') ? 'loopback' : v4;
  const cacheKey = `${ipv6Prefix} ${address}`;
  let key = v6Keys.get(cacheKey);
  if (key === undefined) {
    key = ipv6Key(address, ipv6Prefix);
    if (v6Keys.size >= V6_KEYS_MAX) v6Keys.clear();
    v6Keys.set(cacheKey, key);
  }
  return key;
}

function ipv6Key(address: string, prefix: number): string {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.process(address.replace(/%.*$/, ''));
  } catch {
    return address;
  }
  if (ip.range() === 'loopback') return 'loopback';
  if (ip.kind() === 'ipv4') return ip.toString();
  const bytes = ip.toByteArray();
  for (let bit = prefix; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return `${ipaddr.fromByteArray(bytes).toString()}/${prefix}`;
}
