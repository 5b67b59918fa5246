import fc from 'fast-check';

/**
 * What the fuzz tests generate, shared by the HTTP and the gRPC ones: names that collide often
 * (so namespaces fill up, ids clash, deletes find something), valid request bodies, and the
 * ways to break them (wrong types, hostile keys, JSON text that does not parse).
 */

/**
 * fast-check settings. The seed is printed first (a run that hangs never reaches fast-check's
 * report); FUZZ_SEED=<seed> replays it. No shrinking: a shrunk replay starts from the registry
 * the failing run left behind, so it would report a request that fails only because of that
 * state; the first failure, with its whole request sequence, is the one to read.
 */
export function fuzzParams(what: string, numRuns: number): fc.Parameters<unknown> {
  const given = process.env['FUZZ_SEED'];
  const seed = given === undefined || given === '' ? Math.floor(Math.random() * 0x7fffffff) : Number(given);
  process.stderr.write(`${what}: fast-check seed ${seed} (FUZZ_SEED=${seed} replays it)\n`);
  return { numRuns, seed, endOnFailure: true };
}

/** A JSON fragment sent as it is: numbers JSON.stringify cannot write, deep nesting, broken text. */
class RawJson {
  constructor(readonly text: string) {}
  toJSON(): string {
    return `RawJson(${this.text.length > 60 ? `${this.text.slice(0, 60)}...` : this.text})`;
  }
}

/** JSON text of a value with RawJson parts; own keys such as `__proto__` are written like any other. */
function toJsonText(v: unknown): string {
  if (v instanceof RawJson) return v.text;
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : toJsonText(x))).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const parts: string[] = [];
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) parts.push(`${JSON.stringify(k)}:${toJsonText(x)}`);
    }
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Sets an own property, even `__proto__`. */
function defineKey(o: object, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** A deep copy that keeps RawJson parts and own `__proto__` keys. */
function cloneBody<T>(v: T): T {
  if (v instanceof RawJson || typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map(cloneBody) as T;
  const out = {};
  for (const k of Object.keys(v)) defineKey(out, k, cloneBody((v as Record<string, unknown>)[k]));
  return out as T;
}

// ---- names ------------------------------------------------------------------------------------

export const NS_POOL = ['default', 'team', 'fz1', 'fz2', 'fz3'] as const;
export const SVC_POOL = ['orders', 's1', 's2', 'Pay.v2:a'] as const;
export const ID_POOL = ['i1', 'i2', 'web-1'] as const;
/** Names of the fixture tokens: the fuzzer never creates or revokes these. */
export const FIXTURE_TOKENS = ['admin', 'writer', 'reader', 'revoked'] as const;

/** Any code point, lone surrogates included (what fast-check's 'binary' unit gives, without its second-long setup). */
const anyChar = fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c));
const anyText = (constraints: { minLength?: number; maxLength: number }) =>
  fc.string({ unit: anyChar, ...constraints });

const nameChars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:'.split('');
const freshName = fc
  .string({ unit: fc.constantFrom(...nameChars), minLength: 1, maxLength: 12 })
  .filter((s) => s !== '.' && s !== '..');
/** Names at the length limit and past it, made of one repeated character (what slow pattern matching chokes on). */
const longName = fc
  .tuple(fc.constantFrom('a', 'b', '-', '.'), fc.integer({ min: 100, max: 140 }))
  .map(([c, n]) => c.repeat(n));

/** Strings that are not names, or barely are. */
export const weirdString = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '.',
    '..',
    '/',
    'a/b',
    '%',
    '%2F',
    '%00',
    '\u0000',
    'NaN',
    'Infinity',
    '-0',
    'null',
    'undefined',
    'true',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    '*',
    '**',
    '\ud800',
    '\udfff',
    'a\ud83db',
    '𝕏',
    'é',
    'ß',
    '\u202e',
    '\ufeff',
    '\u00a0',
    '<script>',
    "'; DROP TABLE instance; --",
    '${x}',
    '\\',
    '"',
    '\n',
    '\r\n',
    'a'.repeat(129),
    'mst_000000000000_',
    'default ',
    ' default',
    'DEFAULT',
  ),
  anyText({ maxLength: 16 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  longName,
);

/** A name: one that exists or will, a fresh valid one, or something that is not a name. */
export const nameFrom = (pool: readonly string[]) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...pool) },
    { weight: 3, arbitrary: freshName },
    { weight: 1, arbitrary: longName },
    { weight: 2, arbitrary: weirdString },
  );

// ---- field values -----------------------------------------------------------------------------

export const hostArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      '10.0.0.1',
      '10.0.0.2',
      'host-a',
      'Host-A',
      '::1',
      'db.example.com',
      'fe80::1',
      'a.b-c.d',
    ),
  },
  { weight: 2, arbitrary: fc.ipV4() },
  { weight: 1, arbitrary: fc.ipV6() },
  { weight: 1, arbitrary: fc.domain() },
);
export const portArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(80, 8080, 9090) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 65535 }) },
);

/** Text as users write it, and as they should not: any code point, lone surrogates included. */
export const textArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('', 'prod', 'dev', 'eu-west-1', 'v1.2.3') },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 1, arbitrary: anyText({ maxLength: 8 }) },
);
const metaKeyArb = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'env',
      'zone',
      'version',
      'a.b',
      'constructor',
      'toString',
      'hasOwnProperty',
      'valueOf',
      'ключ',
      '🔑',
      '__proto__',
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }) },
  { weight: 1, arbitrary: anyText({ maxLength: 6 }) },
);
/** Built with defineKey: a generated `__proto__` key is an own key, as JSON.parse makes it. */
export const metadataArb = fc.array(fc.tuple(metaKeyArb, textArb), { maxLength: 4 }).map((entries) => {
  const o: Record<string, string> = {};
  for (const [k, v] of entries) defineKey(o, k, v);
  return o;
});
export const locationArb = fc.record({ region: textArb, zone: textArb, campus: textArb }, { requiredKeys: [] });
export const commentArb = fc.oneof(
  { weight: 4, arbitrary: textArb },
  { weight: 1, arbitrary: fc.string({ maxLength: 1100 }) },
);

// ---- breaking valid bodies --------------------------------------------------------------------

const deep = (open: string, close: string, inner: string) =>
  fc.integer({ min: 1, max: 5000 }).map((n) => new RawJson(open.repeat(n) + inner + close.repeat(n)));

/** Values no field accepts, or that only look right. */
const badValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1.5,
    65536,
    2 ** 31,
    2 ** 32,
    2 ** 53 + 2,
    1e308,
    -1e308,
    Number.MIN_VALUE,
    10001,
    1000001,
    61,
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom('80', 'NaN', 'Infinity', '-Infinity', '1e3', '0x50', ' 80', '8080 ', 'true', 'heartbeat', 'tcp'),
  fc
    .constantFrom(
      '1e999',
      '-1e999',
      '-0',
      '1.0',
      '8080.000',
      '1E2',
      '0.1e1',
      '123456789012345678901234567890',
      '"\\ud800"',
      '"\\u0000"',
    )
    .map((t) => new RawJson(t)),
  weirdString,
  fc.string({ minLength: 4097, maxLength: 5000 }),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  fc.dictionary(
    fc.oneof(weirdString, fc.constantFrom('__proto__', 'constructor', 'prototype')),
    fc.jsonValue({ maxDepth: 2 }),
    { maxKeys: 3 },
  ),
  deep('[', ']', ''),
  deep('{"a":', '}', '1'),
);

export type BodyMutation =
  | { kind: 'none' }
  | { kind: 'set'; at: number; value: unknown }
  | { kind: 'drop'; at: number }
  | { kind: 'add'; at: number; key: string; value: unknown }
  | { kind: 'replace'; value: unknown }
  | { kind: 'text'; op: TextOp };

export type TextOp =
  | { op: 'truncate'; frac: number }
  | { op: 'insert'; frac: number; text: string }
  | { op: 'cut'; frac: number; len: number }
  | { op: 'whole'; text: string }
  | { op: 'wrap'; before: string; after: string }
  | { op: 'huge' };

const extraKey = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '__proto__',
      'constructor',
      'prototype',
      'colour',
      'id',
      'host',
      'isolate',
      'healthy',
      'revision',
      'namespace',
      'token',
    ),
  },
  { weight: 1, arbitrary: weirdString },
);

const textOp: fc.Arbitrary<TextOp> = fc.oneof(
  fc.record({ op: fc.constant('truncate' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({
    op: fc.constant('insert' as const),
    frac: fc.double({ min: 0, max: 1, noNaN: true }),
    text: fc.oneof(
      fc.constantFrom(',', '}', '{', '"', '\\', ':', '\u0000', '\ud800', 'NaN', '//', '/*'),
      fc.string({ maxLength: 4 }),
    ),
  }),
  fc.record({
    op: fc.constant('cut' as const),
    frac: fc.double({ min: 0, max: 1, noNaN: true }),
    len: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    op: fc.constant('whole' as const),
    text: fc.oneof(
      fc.constantFrom(
        '',
        ' ',
        'null',
        '[]',
        '{}',
        '"x"',
        '1',
        'true',
        '{"a":1,}',
        "{'a':1}",
        '{"__proto__":{"admin":true}}',
        '{"constructor":{"prototype":{"admin":true}}}',
        '\ufeff{}',
        '{"a":1}{"b":2}',
      ),
      fc.string({ maxLength: 30 }),
      fc.json({ maxDepth: 3 }),
    ),
  }),
  fc.record({
    op: fc.constant('wrap' as const),
    before: fc.constantFrom('', '\ufeff', ' \n\t', '[', 'x'),
    after: fc.constantFrom('', ' ', ']', 'garbage', ',{}', '\u0000'),
  }),
  fc.constant({ op: 'huge' as const }),
);

export const mutationArb: fc.Arbitrary<BodyMutation> = fc.oneof(
  { weight: 40, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 16, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: badValue }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      at: fc.nat(),
      key: extraKey,
      value: fc.oneof(badValue, fc.jsonValue({ maxDepth: 2 })),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('replace' as const),
      value: fc.oneof(badValue, fc.jsonValue({ maxDepth: 3 })),
    }),
  },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('text' as const), op: textOp }) },
);

/** Every path to an object member of a body: [] is the body itself. */
function objectPaths(v: unknown, at: string[] = [], out: string[][] = []): string[][] {
  if (typeof v !== 'object' || v === null || v instanceof RawJson || Array.isArray(v)) return out;
  out.push(at);
  for (const k of Object.keys(v)) objectPaths((v as Record<string, unknown>)[k], [...at, k], out);
  return out;
}
function memberPaths(v: unknown): string[][] {
  return objectPaths(v).flatMap((p) => Object.keys(get(v, p) as object).map((k) => [...p, k]));
}
const get = (v: unknown, path: string[]): unknown => path.reduce((o, k) => (o as Record<string, unknown>)[k], v);

/** The body's JSON text after a mutation; undefined body stays absent unless the mutation writes text. */
export function mutateBody(body: unknown, m: BodyMutation): string | undefined {
  const b = cloneBody(body);
  switch (m.kind) {
    case 'none':
      return body === undefined ? undefined : toJsonText(b);
    case 'replace':
      return toJsonText(m.value);
    case 'set': {
      const paths = memberPaths(b);
      if (paths.length === 0) return toJsonText(m.value);
      const p = paths[m.at % paths.length]!;
      defineKey(get(b, p.slice(0, -1)) as object, p[p.length - 1]!, m.value);
      return toJsonText(b);
    }
    case 'drop': {
      const paths = memberPaths(b);
      if (paths.length === 0) return body === undefined ? undefined : toJsonText(b);
      const p = paths[m.at % paths.length]!;
      delete (get(b, p.slice(0, -1)) as Record<string, unknown>)[p[p.length - 1]!];
      return toJsonText(b);
    }
    case 'add': {
      const objs = objectPaths(b);
      if (objs.length === 0) return toJsonText({ [m.key]: m.value });
      defineKey(get(b, objs[m.at % objs.length]!) as object, m.key, m.value);
      return toJsonText(b);
    }
    case 'text':
      return mutateText(body === undefined ? '' : toJsonText(b), m.op);
  }
}

function mutateText(t: string, op: TextOp): string {
  const at = (frac: number) => Math.min(t.length, Math.floor(frac * t.length));
  switch (op.op) {
    case 'truncate':
      return t.slice(0, at(op.frac));
    case 'insert':
      return t.slice(0, at(op.frac)) + op.text + t.slice(at(op.frac));
    case 'cut':
      return t.slice(0, at(op.frac)) + t.slice(at(op.frac) + op.len);
    case 'whole':
      return op.text;
    case 'wrap':
      return op.before + t + op.after;
    case 'huge':
      // Past the 1 MiB body limit: answered 413 without being parsed.
      return t + ' '.repeat(1_100_000);
  }
}

/** What the server makes of a body it accepted: JSON.parse, minus the byte order mark the JSON parser skips. */
export function parsedAsServer(text: string | undefined): unknown {
  if (text === undefined || text === '') return undefined;
  // -0 is JSON's 0: the server answers and stores it as 0.
  return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, (_, v: unknown) =>
    Object.is(v, -0) ? 0 : v,
  );
}
