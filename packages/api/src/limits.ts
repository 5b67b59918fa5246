/**
 * The data model's limits, declared once. The server's validator enforces them and its HTTP
 * schemas (and so the OpenAPI document) describe them from this same table.
 */
export const LIMITS = {
  name: { min: 1, max: 128, pattern: '^[A-Za-z0-9_\\-.:]+$', describe: '1..128 characters of A-Z a-z 0-9 _ - . :' },
  host: { min: 1, max: 128, describe: 'an IPv4 or IPv6 address or a DNS name of 1..128 characters' },
  port: { min: 1, max: 65535, describe: 'an integer in 1..65535' },
  weight: { min: 0, max: 10000, default: 100, describe: 'an integer in 0..10000' },
  priority: { min: 0, max: 1000000, default: 0, describe: 'an integer in 0..1000000 (lower is preferred)' },
  ttl: { min: 1, max: 60, default: 5, describe: 'an integer number of seconds in 1..60' },
  metadata: {
    maxKeys: 64,
    keyMax: 128,
    valueMax: 4096,
    describe: 'at most 64 keys of 1..128 characters, values of at most 4096 characters',
  },
  shortText: { max: 128, describe: 'at most 128 characters' },
  comment: { max: 1024, describe: 'at most 1024 characters' },
  verificationSecret: {
    min: 16,
    max: 256,
    pattern: '^[!-~]+$',
    describe: '16..256 printable ASCII characters without spaces',
  },
  verificationPath: {
    max: 256,
    default: '/.well-known/muster/verify',
    pattern: "^/[A-Za-z0-9\\-._~!$&'()*+,;=:@%/]*$",
    describe: 'a URL path of at most 256 characters that starts with / (no query, no fragment)',
  },
  /** The most a verify path may answer: a hex HMAC-SHA256 is 64 bytes; anything over this fails the check. */
  verificationAnswerMaxBytes: 4096,
  longPollMaxSeconds: 60,
  heartbeatBatchMax: 1000,
} as const;

/** Heartbeats missed before an instance turns unhealthy: it is unhealthy after 3 × ttl. */
export const MISSED_HEARTBEATS = 3;
