import ipaddr from 'ipaddr.js';

/**
 * Where the registry's verification request may not go. A registration names any host and port,
 * so the check is a request an anonymous caller aims: it must never reach what only the
 * registry's own network position can reach and that answers secrets to a plain GET, the cloud
 * metadata services above all (the classic SSRF target), nor this host's own ports. Loopback
 * addresses are refused unless `allowLoopback`, the unspecified ones (0.0.0.0/8 and ::, which
 * connect to this host) always; link-local ones unless `allowLinkLocal` (no service instance
 * normally lives there); private ranges only when `allowPrivate` is off (instances usually
 * live there); the metadata addresses always, since no instance can live at them.
 *
 * IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d, ::a.b.c.d, NAT64 64:ff9b::/96, 6to4
 * 2002::/16) are judged by that IPv4 address too: they are how a refused address gets disguised.
 */
export interface GuardOptions {
  allowLinkLocal: boolean;
  allowLoopback: boolean;
  allowPrivate: boolean;
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];
const ranges = (...cidrs: string[]): Range[] => cidrs.map((c) => ipaddr.parseCIDR(c));

/** Each class of address, what it is called, and the option that allows it (none: refused always). */
const CLASSES: ReadonlyArray<{ what: string; ranges: Range[]; allowedBy?: keyof GuardOptions }> = [
  { what: 'an unspecified address (it connects to this host)', ranges: ranges('0.0.0.0/8', '::/128') },
  { what: 'a loopback address (this host)', ranges: ranges('127.0.0.0/8', '::1/128'), allowedBy: 'allowLoopback' },
  { what: 'link-local', ranges: ranges('169.254.0.0/16', 'fe80::/10'), allowedBy: 'allowLinkLocal' },
  {
    what: 'a private address',
    ranges: ranges('10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7'),
    allowedBy: 'allowPrivate',
  },
];

const OPTION_NAMES: Record<keyof GuardOptions, string> = {
  allowLinkLocal: 'verification.allowLinkLocal',
  allowLoopback: 'verification.allowLoopback',
  allowPrivate: 'verification.allowPrivate',
};

const METADATA: ReadonlyArray<[address: string, what: string]> = [
  ['169.254.169.254', 'the cloud instance metadata service (AWS, GCP, Azure, OpenStack and others)'],
  ['169.254.170.2', 'the AWS ECS task metadata service'],
  ['fd00:ec2::254', 'the AWS instance metadata service over IPv6'],
  ['100.100.100.200', 'the Alibaba Cloud metadata service'],
  ['168.63.129.16', 'the Azure WireServer'],
];
const METADATA_PARSED = METADATA.map(([a, what]) => [ipaddr.parse(a), what] as const);

/**
 * Why the registry must not connect to this IP address (an IPv4 or IPv6 literal), or undefined
 * when it may. Anything that does not parse as an address is refused: the caller resolves names.
 */
export function addressRefusal(address: string, opts: GuardOptions): string | undefined {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.parse(address);
  } catch {
    return `${address} is not an IP address`;
  }
  const embedded = ip.kind() === 'ipv6' ? embeddedIPv4(ip as ipaddr.IPv6) : undefined;
  for (const candidate of embedded ? [ip, embedded] : [ip]) {
    const via = candidate === ip ? '' : ` (it carries the IPv4 address ${candidate.toString()})`;
    for (const [m, what] of METADATA_PARSED) {
      if (m.kind() === candidate.kind() && candidate.match(m, m.kind() === 'ipv4' ? 32 : 128))
        return `${address} is ${what}${via}`;
    }
    for (const c of CLASSES) {
      if (c.allowedBy !== undefined && opts[c.allowedBy]) continue;
      const hit = c.ranges.find((r) => r[0].kind() === candidate.kind() && candidate.match(r));
      if (hit) {
        const how = c.allowedBy === undefined ? '' : `; set ${OPTION_NAMES[c.allowedBy]} to allow it`;
        return `${address} is ${c.what} (${hit[0].toString()}/${hit[1]})${via}${how}`;
      }
    }
  }
  return undefined;
}

/** The IPv4 address an IPv6 address stands for, in the forms that route to one. */
function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const bytes = ip.toByteArray();
  const range = ip.range();
  if (
    range === 'ipv4Mapped' ||
    range === 'rfc6145' ||
    (range === 'rfc6052' && ip.match(ipaddr.parseCIDR('64:ff9b::/96')))
  ) {
    return new ipaddr.IPv4(bytes.slice(12));
  }
  if (range === '6to4') return new ipaddr.IPv4(bytes.slice(2, 6));
  // IPv4-compatible (deprecated, still parsed by some stacks): 96 zero bits, then the address.
  if (bytes.slice(0, 12).every((b) => b === 0) && (ip.parts[6]! !== 0 || ip.parts[7]! > 1))
    return new ipaddr.IPv4(bytes.slice(12));
  return undefined;
}
