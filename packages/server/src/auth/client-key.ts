import ipaddr from 'ipaddr.js';

/**
 * Who counts as one client for the per-address limits. Counting by exact address is what a
 * rotating attacker beats: a host usually holds a whole IPv6 /64 and picks any address in it,
 * and every address of 127.0.0.0/8 (and ::1) is this same host. So an IPv6 address counts by
 * its first `ipv6Prefix` bits, an IPv4 address (also written as ::ffff:a.b.c.d) by itself, and
 * every loopback address as one client. What does not parse (a gRPC peer that is a Unix socket)
 * counts as itself.
 */
export function clientKey(address: string, ipv6Prefix: number): string {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.process(address.replace(/%.*$/, ''));
  } catch {
    return address;
  }
  if (ip.range() === 'loopback') return 'loopback';
  if (ip.kind() === 'ipv4') return ip.toString();
  const bytes = ip.toByteArray();
  for (let bit = ipv6Prefix; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return `${ipaddr.fromByteArray(bytes).toString()}/${ipv6Prefix}`;
}
