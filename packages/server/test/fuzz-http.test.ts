import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  checkHttpAnswer,
  fuzzServer,
  FIXTURE_RULES,
  grants,
  RawHttp,
  readState,
  RegistryModel,
  type Fixtures,
  type HttpAnswer,
  type InstanceState,
  type Presented,
} from './fuzz-model.js';
import {
  commentArb,
  FIXTURE_TOKENS,
  hostArb,
  ID_POOL,
  locationArb,
  metadataArb,
  mutateBody,
  mutationArb,
  nameFrom,
  NS_POOL,
  parsedAsServer,
  portArb,
  SVC_POOL,
  weirdString,
  type BodyMutation,
} from './fuzz-values.js';

/**
 * Property-based fuzzing of every HTTP write route (fast-check): valid operations, so the state
 * really changes, mixed with broken bodies, paths, headers and credentials. Each run is a
 * sequence of requests; every answer must be a success or a well-formed error (never a 5xx),
 * successes must be allowed by the caller's rights, and at the end of the run the registry must
 * hold exactly what the successful writes made, no more. FUZZ_SEED=<seed> replays a failure.
 */

// ---- what is generated ------------------------------------------------------------------------

type Kind =
  | 'createNs'
  | 'deleteNs'
  | 'createSvc'
  | 'patchSvc'
  | 'deleteSvc'
  | 'register'
  | 'patchInst'
  | 'deregister'
  | 'heartbeat'
  | 'heartbeats'
  | 'createToken'
  | 'revokeToken';

const ROUTES: ReadonlyArray<{ kind: Kind; method: string; path: string }> = [
  { kind: 'createNs', method: 'POST', path: '/v1/namespaces' },
  { kind: 'deleteNs', method: 'DELETE', path: '/v1/namespaces/:ns' },
  { kind: 'createSvc', method: 'POST', path: '/v1/namespaces/:ns/services' },
  { kind: 'patchSvc', method: 'PATCH', path: '/v1/namespaces/:ns/services/:svc' },
  { kind: 'deleteSvc', method: 'DELETE', path: '/v1/namespaces/:ns/services/:svc' },
  { kind: 'register', method: 'POST', path: '/v1/namespaces/:ns/services/:svc/instances' },
  { kind: 'patchInst', method: 'PATCH', path: '/v1/instances/:id' },
  { kind: 'deregister', method: 'DELETE', path: '/v1/instances/:id' },
  { kind: 'heartbeat', method: 'PUT', path: '/v1/instances/:id/heartbeat' },
  { kind: 'heartbeats', method: 'POST', path: '/v1/heartbeats' },
  { kind: 'createToken', method: 'POST', path: '/v1/tokens' },
  { kind: 'revokeToken', method: 'DELETE', path: '/v1/tokens/:ref' },
];
const OTHER_PATHS = [
  '/',
  '/v1',
  '/v1/',
  '/healthz',
  '/v1/namespaces/:ns',
  '/v1/instances/:id',
  '/v1/namespaces/:ns/services/:svc/instances',
  '/v1/events',
  '/v1/tokens',
  '/v1/nope/:id',
];

/** A reference resolved when the request is made: "the n-th that exists now", or a given value. */
type Ref = { k: 'known'; i: number } | { k: 'is'; v: string };
type Caller = 'none' | 'admin' | 'writer' | 'reader' | 'revoked' | 'mstUnknown' | 'own' | 'other' | 'garbage' | 'fuzz';
type AuthForm = 'Bearer' | 'bearer' | 'spaced' | 'Basic' | 'bare' | 'two' | 'double' | 'empty';
type PathMode = { m: 'plain' | 'all' | 'raw' } | { m: 'mutate'; how: PathMutation; at: number };
type PathMutation =
  | 'trailing'
  | 'double'
  | 'dot'
  | 'dotdot'
  | 'badPercent'
  | 'badUtf8'
  | 'long'
  | 'upper'
  | 'fragment'
  | 'empty'
  | 'nul'
  | 'query';

interface Op {
  kind: Kind | 'random';
  /** Half of the requests are sent clean (body, path and headers as valid as generated): they make the state. */
  dirty: boolean;
  /** A registration below 3 registers an existing instance again (same service, host, port, id). */
  again: number;
  method: string;
  template: string;
  ns: Ref;
  svc: Ref;
  inst: Ref;
  body: unknown;
  mutation: BodyMutation;
  query: string;
  path: PathMode;
  caller: Caller;
  callerIdx: number;
  auth: AuthForm;
  garbage: string;
  contentType: string | null;
  extra: Array<[string, string]>;
  items: Array<{ inst: Ref; token: Caller; idx: number }>;
}

const ref = (pool: readonly string[]): fc.Arbitrary<Ref> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.record({ k: fc.constant('known' as const), i: fc.nat() }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('is' as const), v: nameFrom(pool) }) },
  );
const instRef: fc.Arbitrary<Ref> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('known' as const), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('is' as const), v: nameFrom(ID_POOL) }) },
);

/** Header values Node lets a client send: printable ASCII and Latin-1, tabs. */
const headerText = fc.string({
  unit: fc
    .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(9))
    .map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const callerArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Caller>('admin') },
  { weight: 3, arbitrary: fc.constant<Caller>('own') },
  ...(['none', 'writer', 'reader', 'fuzz', 'other', 'revoked', 'mstUnknown', 'garbage'] as const).map((c) => ({
    weight: 1,
    arbitrary: fc.constant<Caller>(c),
  })),
);
const authArb = fc.oneof(
  { weight: 20, arbitrary: fc.constant<AuthForm>('Bearer') },
  { weight: 1, arbitrary: fc.constantFrom<AuthForm>('bearer', 'spaced', 'Basic', 'bare', 'two', 'double', 'empty') },
);
const contentTypeArb = fc.oneof(
  { weight: 20, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      null,
      '',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json; charset=latin1',
      'application/json;;',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      'application/problem+json',
      '*/*',
      'application/json, text/plain',
    ),
  },
  { weight: 1, arbitrary: headerText },
);
// Not generated: a request without Host, or with an Expect other than 100-continue: Node's HTTP
// server answers those itself (400, 417, empty bodies) before any route sees them.
const extraHeaders = fc.array(
  fc.oneof(
    fc.tuple(
      fc.constantFrom(
        'x-request-id',
        'x-forwarded-for',
        'accept',
        'accept-encoding',
        'content-encoding',
        'if-none-match',
        'x-fuzz',
        'cookie',
        'origin',
        'authorization',
      ),
      headerText,
    ),
    fc.constant<[string, string]>(['expect', '100-continue']),
  ),
  { maxLength: 2 },
);

const pathArb: fc.Arbitrary<PathMode> = fc.oneof(
  { weight: 14, arbitrary: fc.constant({ m: 'plain' as const }) },
  { weight: 1, arbitrary: fc.constant({ m: 'all' as const }) },
  { weight: 1, arbitrary: fc.constant({ m: 'raw' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      m: fc.constant('mutate' as const),
      how: fc.constantFrom<PathMutation>(
        'trailing',
        'double',
        'dot',
        'dotdot',
        'badPercent',
        'badUtf8',
        'long',
        'upper',
        'fragment',
        'empty',
        'nul',
        'query',
      ),
      at: fc.nat(),
    }),
  },
);

const tokenNameArb = nameFrom(['t1', 't2', 't3']).filter((n) => !(FIXTURE_TOKENS as readonly string[]).includes(n));
const patternArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('*', 'team', 'fz*', 'default', 's*', 'orders', '*:*', 'f*z*1') },
  {
    weight: 2,
    arbitrary: fc.string({ unit: fc.constantFrom('*', 'a', 'b', '-', '.', 'f', 'z'), minLength: 1, maxLength: 60 }),
  },
  { weight: 1, arbitrary: weirdString },
);
const ruleArb = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom('read', 'write', 'admin'), patternArb, fc.option(patternArb, { nil: undefined }))
      .map(([r, n, s]) => (s === undefined ? `${r}:${n}` : `${r}:${n}/${s}`)),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(fc.constantFrom('root:*/*', 'write', 'write:', ':*/*', 'admin:*/*/*', 'READ:*/*'), weirdString),
  },
);

const bodies: Record<Kind, fc.Arbitrary<unknown>> = {
  createNs: fc.record({ name: nameFrom(NS_POOL), comment: commentArb }, { requiredKeys: ['name'] }),
  deleteNs: fc.constant(undefined),
  createSvc: fc.record(
    { name: nameFrom(SVC_POOL), comment: commentArb, metadata: metadataArb },
    { requiredKeys: ['name'] },
  ),
  patchSvc: fc.record({ comment: commentArb, metadata: metadataArb }, { requiredKeys: [] }),
  deleteSvc: fc.constant(undefined),
  register: fc.record(
    {
      id: nameFrom(ID_POOL),
      host: hostArb,
      port: portArb,
      protocol: fc.constantFrom('http', 'grpc', ''),
      version: fc.constantFrom('1.0', 'v2', ''),
      weight: fc.integer({ min: 0, max: 10000 }),
      priority: fc.integer({ min: 0, max: 1_000_000 }),
      metadata: metadataArb,
      location: locationArb,
      healthCheck: fc.record(
        { type: fc.constant('heartbeat'), ttl: fc.integer({ min: 1, max: 60 }) },
        { requiredKeys: [] },
      ),
      isolate: fc.boolean(),
    },
    { requiredKeys: ['host', 'port'] },
  ),
  patchInst: fc.record(
    {
      weight: fc.integer({ min: 0, max: 10000 }),
      priority: fc.integer({ min: 0, max: 1_000_000 }),
      isolate: fc.boolean(),
      metadata: metadataArb,
    },
    { requiredKeys: [] },
  ),
  deregister: fc.constant(undefined),
  heartbeat: fc.constant(undefined),
  // Filled in when the request is made, from `items`: the ids and tokens exist only then.
  heartbeats: fc.constant(undefined),
  createToken: fc.record({ name: tokenNameArb, rules: fc.array(ruleArb, { minLength: 1, maxLength: 3 }) }),
  revokeToken: fc.constant(undefined),
};

const queryArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '?force=true',
      '?force=false',
      '?force=1',
      '?force=',
      '?force=yes',
      '?force=true&force=false',
      '?x=1',
      '?__proto__[x]=1',
      '?force=true&extra=1',
      '?',
    ),
  },
);

const WEIGHTS: Record<Kind | 'random', number> = {
  register: 24,
  patchInst: 9,
  deregister: 7,
  heartbeat: 7,
  heartbeats: 4,
  createNs: 6,
  deleteNs: 5,
  createSvc: 6,
  patchSvc: 5,
  deleteSvc: 6,
  createToken: 3,
  revokeToken: 3,
  random: 8,
};

const common = {
  dirty: fc.boolean(),
  again: fc.integer({ min: 0, max: 9 }),
  ns: ref(NS_POOL),
  svc: ref(SVC_POOL),
  inst: instRef,
  mutation: mutationArb,
  path: pathArb,
  caller: callerArb,
  callerIdx: fc.nat(),
  auth: authArb,
  garbage: headerText,
  contentType: contentTypeArb,
  extra: extraHeaders,
  items: fc.array(
    fc.record({
      inst: instRef,
      token: fc.constantFrom<Caller>('own', 'own', 'own', 'other', 'garbage', 'none'),
      idx: fc.nat(),
    }),
    { maxLength: 5 },
  ),
};

/** One line per request in a counterexample, instead of the whole object. */
function describeOp(o: Op): string {
  const path = o.path.m === 'mutate' ? `mutate:${o.path.how}` : o.path.m;
  const mut = o.mutation.kind === 'text' ? `text:${o.mutation.op.op}` : o.mutation.kind;
  const body = o.body === undefined ? '' : ` ${JSON.stringify(o.body)?.slice(0, 120)}`;
  const extra = o.extra.length > 0 ? ` headers=${JSON.stringify(o.extra)}` : '';
  const again = o.kind === 'register' && o.again < 3 ? ' again' : '';
  if (!o.dirty)
    return `${o.kind}${again}: ${o.method} ${o.template}${o.query} caller=${o.caller}#${o.callerIdx} clean${o.body === undefined ? '' : ` ${JSON.stringify(o.body)?.slice(0, 120)}`}`;
  return `${o.kind}${again}: ${o.method} ${o.template}${o.query} caller=${o.caller}#${o.callerIdx}/${o.auth} ct=${JSON.stringify(o.contentType)} path=${path} body=${mut}${body}${extra}`;
}
const printable = (o: Op): Op => Object.assign(o, { [fc.toStringMethod]: () => describeOp(o) });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  ...ROUTES.map((r) => ({
    weight: WEIGHTS[r.kind],
    arbitrary: fc
      .record({ ...common, body: bodies[r.kind], query: r.kind === 'deleteSvc' ? queryArb : fc.constant('') })
      .map((o): Op => printable({ ...o, kind: r.kind, method: r.method, template: r.path })),
  })),
  {
    weight: WEIGHTS.random,
    arbitrary: fc
      .record({
        ...common,
        method: fc.constantFrom(
          'GET',
          'POST',
          'PUT',
          'PATCH',
          'DELETE',
          'HEAD',
          'OPTIONS',
          'TRACE',
          'SEARCH',
          'PROPFIND',
        ),
        template: fc.constantFrom(...ROUTES.map((r) => r.path), ...OTHER_PATHS),
        body: fc.oneof(...Object.values(bodies), fc.jsonValue({ maxDepth: 3 })),
        query: queryArb,
      })
      .map((o): Op => printable({ ...o, kind: 'random' })),
  },
);

/** Mostly one request at a time; now and then two to four at once, to race each other. */
const stepArb: fc.Arbitrary<Op[]> = fc.oneof(
  { weight: 30, arbitrary: opArb.map((op) => [op]) },
  { weight: 1, arbitrary: fc.array(opArb, { minLength: 2, maxLength: 4 }) },
);

// ---- paths ------------------------------------------------------------------------------------

/** encodeURIComponent throws on a lone surrogate: it goes as U+FFFD, as a browser would send it. */
const wellFormed = (s: string) => s.replace(/\p{Cs}/gu, '\ufffd');
const encodeComponent = (s: string) => encodeURIComponent(wellFormed(s));
const encodeAll = (s: string) =>
  [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
/** As typed, except what Node refuses to put in a request line (space, controls, non-Latin-1). */
const rawParam = (s: string) => wellFormed(s).replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));

function buildPath(template: string, params: Record<string, string>, mode: PathMode, query: string): string {
  const enc = mode.m === 'all' ? encodeAll : mode.m === 'raw' ? rawParam : encodeComponent;
  let p = template.replace(/:(\w+)/g, (_, k: string) => enc(params[k] ?? ''));
  if (mode.m === 'mutate') {
    const segs = p.split('/');
    const i = 1 + (mode.at % Math.max(1, segs.length - 1));
    switch (mode.how) {
      case 'trailing':
        p += '/';
        break;
      case 'double':
        segs.splice(i, 0, '');
        p = segs.join('/');
        break;
      case 'dot':
        segs.splice(i, 0, '.');
        p = segs.join('/');
        break;
      case 'dotdot':
        segs.splice(i, 0, '..');
        p = segs.join('/');
        break;
      case 'badPercent':
        segs[i] += '%ZZ';
        p = segs.join('/');
        break;
      case 'badUtf8':
        segs[i] += '%C3%28%FF';
        p = segs.join('/');
        break;
      case 'long':
        segs[i] += 'x'.repeat(600 + (mode.at % 9000));
        p = segs.join('/');
        break;
      case 'upper':
        p = p.toUpperCase();
        break;
      case 'fragment':
        p += '#frag';
        break;
      case 'empty':
        segs[i] = '';
        p = segs.join('/');
        break;
      case 'nul':
        segs[i] += '%00';
        p = segs.join('/');
        break;
      case 'query':
        p += '?a=%ZZ&b[c]=1&&=&x';
        break;
    }
  }
  return p + query;
}

/**
 * Which write route a request reaches, and its decoded parameters, as the router reads a path:
 * the query cut off, one trailing slash ignored, each parameter percent-decoded.
 */
function routeOf(
  method: string,
  path: string,
): { kind: Kind; params: Record<string, string>; query: URLSearchParams } | undefined {
  const q = path.search(/[?#]/);
  let p = q < 0 ? path : path.slice(0, q);
  const query = new URLSearchParams(q < 0 || path[q] === '#' ? '' : path.slice(q + 1).split('#')[0]);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  const segs = p.split('/');
  for (const r of ROUTES) {
    if (r.method !== method) continue;
    const t = r.path.split('/');
    if (t.length !== segs.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < t.length && ok; i++) {
      if (t[i]!.startsWith(':')) {
        try {
          params[t[i]!.slice(1)] = decodeURIComponent(segs[i]!);
        } catch {
          ok = false;
        }
      } else ok = t[i] === segs[i];
    }
    if (ok) return { kind: r.kind, params, query };
  }
  return undefined;
}

// ---- running the requests ---------------------------------------------------------------------

interface Prepared {
  op: Op;
  path: string;
  headers: string[];
  text: string | undefined;
  presented: Presented;
  what: string;
}

function* permutations<T>(items: readonly T[]): Generator<T[]> {
  if (items.length <= 1) {
    yield [...items];
    return;
  }
  for (let i = 0; i < items.length; i++) {
    for (const rest of permutations([...items.slice(0, i), ...items.slice(i + 1)])) yield [items[i]!, ...rest];
  }
}

const isAccessToken = (s: string) => /^mst_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/.test(s);

class HttpFuzzer {
  /** Each instance's current heartbeatToken, and every one ever issued (for "someone else's"). */
  readonly instanceTokens = new Map<string, string>();
  readonly issued: string[] = [];
  /** Secrets of the access tokens the fuzzer created, by token id. */
  readonly secrets = new Map<string, string>();
  requests = 0;
  /** Answers per operation and status (FUZZ_STATS=1 prints them): is the fuzzer reaching anything? */
  readonly stats = new Map<string, number>();

  constructor(
    readonly h: RawHttp,
    readonly fx: Fixtures,
    readonly clients: 'required' | 'open',
  ) {}

  /** Rules of the valid access token with this secret; undefined when it is not one. */
  private rulesOf(secret: string, m: RegistryModel): readonly string[] | undefined {
    if (secret === this.fx.admin) return FIXTURE_RULES.admin;
    if (secret === this.fx.writer) return FIXTURE_RULES.writer;
    if (secret === this.fx.reader) return FIXTURE_RULES.reader;
    for (const [id, s] of this.secrets)
      if (s === secret) return m.tokens.get(id)?.revoked === false ? m.tokens.get(id)!.rules : undefined;
    return undefined;
  }

  private credential(
    c: Caller,
    idx: number,
    garbage: string,
    targetId: string | undefined,
    m: RegistryModel,
  ): string | undefined {
    switch (c) {
      case 'none':
        return undefined;
      case 'admin':
        return this.fx.admin;
      case 'writer':
        return this.fx.writer;
      case 'reader':
        return this.fx.reader;
      case 'revoked':
        return this.fx.revoked;
      case 'mstUnknown':
        return `mst_${idx.toString(16).padStart(12, '0').slice(-12)}_${'A'.repeat(43)}`;
      case 'own':
        return targetId === undefined ? undefined : this.instanceTokens.get(targetId);
      case 'other':
        return RegistryModel.pick(this.issued, idx);
      case 'garbage':
        return garbage;
      case 'fuzz': {
        const live = [...this.secrets].filter(([id]) => m.tokens.get(id)?.revoked === false).map(([, s]) => s);
        return RegistryModel.pick(live, idx);
      }
    }
  }

  /** The Authorization header(s) a credential goes out as. */
  private authorization(secret: string | undefined, form: AuthForm, garbage: string): string[] {
    if (secret === undefined) return [];
    const value = {
      Bearer: `Bearer ${secret}`,
      bearer: `bearer ${secret}`,
      spaced: `Bearer   ${secret}  `,
      Basic: `Basic ${secret}`,
      bare: secret,
      two: `Bearer ${secret} ${secret}`,
      double: `Bearer ${secret}`,
      empty: 'Bearer ',
    }[form];
    return form === 'double'
      ? ['authorization', value, 'authorization', `Bearer ${garbage}`]
      : ['authorization', value];
  }

  /** What the server makes of a request's headers: Node keeps the first Authorization, without the spaces around it. */
  private presented(headers: readonly string[], m: RegistryModel): Presented {
    const at = headers.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'authorization');
    const bearer =
      at < 0 ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(headers[at + 1]!.replace(/^[ \t]+|[ \t]+$/g, ''))?.[1];
    if (bearer === undefined) return {};
    if (!isAccessToken(bearer)) return { instanceToken: bearer };
    const rules = this.rulesOf(bearer, m);
    return rules ? { rules } : { badAccessToken: true };
  }

  private resolve(r: Ref, known: string[], fallback: string): string {
    return r.k === 'known' ? (RegistryModel.pick(known, r.i) ?? fallback) : r.v;
  }

  /** One step of a run: a request, or a burst of them sent at once. */
  async step(ops: readonly Op[], m: RegistryModel): Promise<void> {
    if (ops.length === 1) return (await this.exchange(this.prepare(ops[0]!, m)))?.(m);
    const prepared = ops.map((op) => this.prepare(op, m));
    const applies = (await Promise.all(prepared.map((p) => this.exchange(p)))).filter((f) => f !== undefined);
    await this.linearize(applies, prepared, m);
  }

  /**
   * Concurrent requests: the registry must end as if the successful ones ran one after the other,
   * in some order (each success still allowed, each answer consistent with that order).
   */
  private async linearize(
    applies: Array<(m: RegistryModel) => void>,
    prepared: readonly Prepared[],
    m: RegistryModel,
  ): Promise<void> {
    const real = (await readState(this.h, this.fx.admin)).canonical();
    const side = () => ({
      tokens: new Map(this.instanceTokens),
      issued: [...this.issued],
      secrets: new Map(this.secrets),
    });
    const before = side();
    const restore = (s: typeof before) => {
      this.instanceTokens.clear();
      for (const [k, v] of s.tokens) this.instanceTokens.set(k, v);
      this.issued.splice(0, this.issued.length, ...s.issued);
      this.secrets.clear();
      for (const [k, v] of s.secrets) this.secrets.set(k, v);
    };
    let first: unknown;
    for (const order of permutations(applies)) {
      const trial = m.clone();
      try {
        for (const apply of order) apply(trial);
        assert.deepStrictEqual(real, trial.canonical());
        m.assign(trial);
        return;
      } catch (err) {
        first ??= err;
        restore(before);
      }
    }
    const burst = prepared.map((p) => p.what.slice(0, 200)).join('\n  ');
    assert.fail(
      `no order of the ${applies.length} successful requests of a burst explains the registry:\n  ${burst}\nin the given order: ${(first as Error).message}`,
    );
  }

  private prepare(op: Op, m: RegistryModel): Prepared {
    let ns = this.resolve(op.ns, [...m.namespaces.keys()].sort(), 'default');
    let svc = this.resolve(op.svc, m.servicesOf(ns), 'orders');
    const id = this.resolve(op.inst, [...m.instances.keys()].sort(), 'i1');
    let body = op.body;
    const existing = m.instances.get(id);
    if (op.kind === 'register' && op.again < 3 && existing && typeof body === 'object' && body !== null) {
      [ns, svc] = [existing.namespace, existing.service];
      body = { ...body, id, host: existing.host, port: existing.port };
    }
    const fuzzTokens = [...m.tokens]
      .filter(([tid, t]) => !t.revoked && this.secrets.has(tid))
      .map(([tid]) => tid)
      .sort();
    const tokenRef = op.inst.k === 'known' ? (RegistryModel.pick(fuzzTokens, op.inst.i) ?? 'nope') : op.inst.v;
    const refValue =
      (FIXTURE_TOKENS as readonly string[]).includes(tokenRef) ||
      [...m.tokens].some(([tid, t]) => (tid === tokenRef || t.name === tokenRef) && !this.secrets.has(tid))
        ? 'nope'
        : tokenRef;
    const params: Record<string, string> = { ns, svc, id, ref: refValue };

    // The heartbeat batch's items exist only now: ids of instances, tokens right or wrong.
    if (op.kind === 'heartbeats') {
      body = {
        heartbeats: op.items.map((it) => ({
          id: this.resolve(it.inst, [...m.instances.keys()].sort(), 'i1'),
          token: '',
        })),
      };
      (body as { heartbeats: Array<{ id: string; token: string | undefined }> }).heartbeats.forEach((hb, n) => {
        const it = op.items[n]!;
        hb.token = this.credential(it.token, it.idx, op.garbage, hb.id, m) ?? '';
      });
    }
    const target =
      op.kind === 'register' || (op.kind === 'random' && op.template.endsWith('/instances'))
        ? registeredId(ns, svc, body, m)
        : id;
    if (!op.dirty)
      op = {
        ...op,
        mutation: { kind: 'none' },
        path: { m: 'plain' },
        auth: 'Bearer',
        contentType: 'application/json',
        extra: [],
      };
    const secret = this.credential(op.caller, op.callerIdx, op.garbage, target, m);
    const path = buildPath(op.template, params, op.path, op.query);
    const text = mutateBody(body, op.mutation);
    const headers = this.authorization(secret, op.auth, op.garbage);
    if (text !== undefined && op.contentType !== null) headers.push('content-type', op.contentType);
    else if (text === undefined && op.contentType !== 'application/json' && op.contentType !== null)
      headers.push('content-type', op.contentType);
    for (const [k, v] of op.extra) headers.push(k, v);
    const presented = this.presented(headers, m);

    const what = `${op.method} ${path.slice(0, 300)} ${JSON.stringify(headers).slice(0, 400)} ${text === undefined ? '' : text.slice(0, 300)}`;
    return { op, path, headers, text, presented, what };
  }

  /** Sends a prepared request and checks the answer; a success answers how it changes the model. */
  private async exchange({
    op,
    path,
    headers,
    text,
    presented,
    what,
  }: Prepared): Promise<((m: RegistryModel) => void) | undefined> {
    this.requests++;
    let a: HttpAnswer;
    try {
      a = await this.h.send(op.method, path, headers, text);
    } catch (err) {
      // A body past the 1 MiB limit is refused (413) before it is read, and the connection closed:
      // the client may still be writing it then.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'EPIPE' || code === 'ECONNRESET') && text !== undefined && Buffer.byteLength(text) > 1_048_576) {
        this.stats.set(`${op.kind} cut off`, (this.stats.get(`${op.kind} cut off`) ?? 0) + 1);
        return undefined;
      }
      throw err;
    }
    const key = `${op.kind === 'random' ? `random ${op.method}` : op.kind} ${a.status}`;
    this.stats.set(key, (this.stats.get(key) ?? 0) + 1);
    checkHttpAnswer(a, op.method, what);
    if (a.status >= 300) return undefined;
    const route = routeOf(op.method, path);
    if (!route) {
      assert.ok(
        op.method === 'GET' || op.method === 'HEAD',
        `${what}: a ${op.method} that reaches no write route succeeded (${a.status})`,
      );
      return undefined;
    }
    // Only routes that read a body get one parsed: a DELETE ignores what it was sent, however deep.
    const sent = ['deleteNs', 'deleteSvc', 'deregister', 'heartbeat', 'revokeToken'].includes(route.kind)
      ? undefined
      : parsedAsServer(text);
    return (m) => this.applySuccess(route.kind, route.params, route.query, sent, presented, a, m, what);
  }

  /** A success: it must have been allowed, and the model takes its effect. */
  private applySuccess(
    kind: Kind,
    p: Record<string, string>,
    query: URLSearchParams,
    body: any,
    who: Presented,
    a: HttpAnswer,
    m: RegistryModel,
    what: string,
  ): void {
    const res = a.text === '' ? undefined : JSON.parse(a.text);
    assert.ok(!who.badAccessToken, `${what}: an unknown or revoked access token was accepted`);
    const may = (right: 'read' | 'write' | 'admin', ns: string, svc: string) =>
      who.rules !== undefined && grants(who.rules, right, ns, svc);
    const owns = (id: string) => who.instanceToken !== undefined && who.instanceToken === this.instanceTokens.get(id);
    switch (kind) {
      case 'createNs': {
        assert.ok(may('admin', body.name, '*'), `${what}: created a namespace without admin`);
        assert.ok(!m.namespaces.has(body.name), `${what}: created namespace ${body.name} twice`);
        assert.equal(a.status, 201);
        m.namespaces.set(body.name, { comment: body.comment ?? '' });
        assert.deepEqual([res.name, res.comment], [body.name, body.comment ?? ''], what);
        return;
      }
      case 'deleteNs': {
        assert.ok(may('admin', p['ns']!, '*'), `${what}: deleted a namespace without admin`);
        assert.ok(
          m.namespaces.has(p['ns']!) && p['ns'] !== 'default' && m.servicesOf(p['ns']!).length === 0,
          `${what}: deleted a namespace that is missing, default or not empty`,
        );
        m.namespaces.delete(p['ns']!);
        return;
      }
      case 'createSvc': {
        const ns = p['ns']!;
        assert.ok(may('admin', ns, body.name), `${what}: created a service without admin`);
        assert.ok(
          m.namespaces.has(ns) && !m.service(ns, body.name),
          `${what}: created a service in a missing namespace, or twice`,
        );
        m.putService(ns, body.name, { comment: body.comment ?? '', metadata: body.metadata ?? {} });
        assert.deepEqual(
          [res.namespace, res.name, res.comment, res.metadata],
          [ns, body.name, body.comment ?? '', body.metadata ?? {}],
          what,
        );
        return;
      }
      case 'patchSvc': {
        const s = m.service(p['ns']!, p['svc']!);
        assert.ok(may('admin', p['ns']!, p['svc']!), `${what}: changed a service without admin`);
        assert.ok(s, `${what}: changed a service that does not exist`);
        if (body?.comment !== undefined) s.comment = body.comment;
        if (body?.metadata !== undefined) s.metadata = body.metadata;
        assert.deepEqual([res.comment, res.metadata], [s.comment, s.metadata], what);
        return;
      }
      case 'deleteSvc': {
        assert.ok(may('admin', p['ns']!, p['svc']!), `${what}: deleted a service without admin`);
        assert.ok(m.service(p['ns']!, p['svc']!), `${what}: deleted a service that does not exist`);
        const force = query.getAll('force');
        assert.ok(
          m.instancesOf(p['ns']!, p['svc']!).length === 0 || (force.length === 1 && ['true', '1'].includes(force[0]!)),
          `${what}: deleted a service with instances without force`,
        );
        m.deleteService(p['ns']!, p['svc']!);
        return;
      }
      case 'register': {
        const [ns, svc] = [p['ns']!, p['svc']!];
        const inst = res.instance;
        const id = m.registrationId(ns, svc, body.id, body.host, body.port);
        const prev = m.instances.get(id);
        if (who.rules !== undefined || this.clients === 'required') {
          assert.ok(
            may('write', ns, svc) || (who.rules === undefined && prev !== undefined && owns(id)),
            `${what}: registered without the right`,
          );
        }
        assert.ok(m.namespaces.has(ns), `${what}: registered in a missing namespace`);
        assert.ok(
          !prev || (prev.namespace === ns && prev.service === svc),
          `${what}: took over the id of another service's instance`,
        );
        // Isolation is an operator's decision, whichever route changes it (PATCH refuses the owner too).
        assert.ok(
          !prev || body.isolate === undefined || body.isolate === prev.isolate || may('write', ns, svc),
          `${what}: changed an instance's isolation without write`,
        );
        assert.equal(
          a.status,
          prev ? 200 : 201,
          `${what}: created is ${a.status === 201} for ${prev ? 'a known' : 'an unknown'} instance`,
        );
        const want: InstanceState = {
          namespace: ns,
          service: svc,
          host: body.host,
          port: body.port,
          protocol: body.protocol ?? '',
          version: body.version ?? '',
          weight: body.weight ?? 100,
          priority: body.priority ?? 0,
          metadata: body.metadata ?? {},
          location: body.location ?? {},
          ttl: body.healthCheck?.ttl ?? 5,
          isolate: body.isolate ?? prev?.isolate ?? false,
        };
        checkInstance(want, what);
        assert.deepEqual(wireState(inst), want, `${what}: the answer differs from the request`);
        assert.equal(inst.id, id, what);
        if (!m.service(ns, svc)) m.putService(ns, svc, { comment: '', metadata: {} });
        m.instances.set(id, want);
        this.instanceTokens.set(id, res.heartbeatToken);
        this.issued.push(res.heartbeatToken);
        return;
      }
      case 'patchInst': {
        const cur = m.instances.get(p['id']!);
        assert.ok(cur, `${what}: changed an instance that does not exist`);
        const write = may('write', cur.namespace, cur.service);
        assert.ok(
          body?.isolate === undefined ? write || owns(p['id']!) : write,
          `${what}: changed an instance without its token or write`,
        );
        for (const k of ['weight', 'priority', 'isolate', 'metadata'] as const)
          if (body?.[k] !== undefined) (cur as any)[k] = body[k];
        assert.deepEqual(wireState(res), cur, `${what}: the answer differs from the change`);
        return;
      }
      case 'deregister':
      case 'heartbeat': {
        const cur = m.instances.get(p['id']!);
        assert.ok(cur, `${what}: ${kind} of an instance that does not exist`);
        assert.ok(
          owns(p['id']!) || may('write', cur.namespace, cur.service),
          `${what}: ${kind} without the instance's token or write`,
        );
        if (kind === 'deregister') m.instances.delete(p['id']!);
        return;
      }
      case 'heartbeats': {
        const items: Array<{ id: string; token: string }> = body.heartbeats;
        assert.equal(res.results.length, items.length, what);
        res.results.forEach((r: any, n: number) => {
          const it = items[n]!;
          assert.equal(r.id, it.id, what);
          if (!r.ok) {
            assert.ok(
              r.error &&
                (['INVALID_ARGUMENT', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'NOT_FOUND'] as const).includes(
                  r.error.code,
                ),
              `${what}: item ${n}: ${JSON.stringify(r)}`,
            );
            return;
          }
          const cur = m.instances.get(it.id);
          assert.ok(cur, `${what}: heartbeat of an instance that does not exist`);
          assert.ok(
            it.token === this.instanceTokens.get(it.id) || may('write', cur.namespace, cur.service),
            `${what}: item ${n} accepted without the token`,
          );
        });
        return;
      }
      case 'createToken': {
        assert.ok(may('admin', '*', '*'), `${what}: created a token without admin on everything`);
        assert.ok(
          ![...m.tokens.values()].some((t) => t.name === body.name && !t.revoked),
          `${what}: a second active token named ${body.name}`,
        );
        const rules = (body.rules as string[]).map((r) => (r.slice(r.indexOf(':') + 1).includes('/') ? r : `${r}/*`));
        assert.deepEqual([res.token.name, res.token.rules], [body.name, rules], what);
        m.tokens.set(res.token.id, { name: body.name, rules, revoked: false });
        this.secrets.set(res.token.id, res.secret);
        return;
      }
      case 'revokeToken': {
        assert.ok(may('admin', '*', '*'), `${what}: revoked a token without admin on everything`);
        const active = [...m.tokens].filter(([, t]) => !t.revoked);
        const hit = active.find(([tid]) => tid === p['ref']) ?? active.find(([, t]) => t.name === p['ref']);
        assert.ok(hit, `${what}: revoked a token that is not active`);
        assert.equal(res.id, hit[0], what);
        hit[1].revoked = true;
        return;
      }
    }
  }
}

/** The instance a registration body is about, as far as the model can tell (a body may be garbage). */
function registeredId(ns: string, svc: string, body: unknown, m: RegistryModel): string | undefined {
  const b = body as { id?: unknown; host?: unknown; port?: unknown } | undefined;
  const given = typeof b?.id === 'string' ? b.id : undefined;
  if (typeof b?.host !== 'string' || typeof b.port !== 'number') return given;
  return m.registrationId(ns, svc, given, b.host, b.port);
}

/** The state fields of an instance as answered. */
function wireState(i: any): InstanceState {
  return {
    namespace: i.namespace,
    service: i.service,
    host: i.host,
    port: i.port,
    protocol: i.protocol,
    version: i.version,
    weight: i.weight,
    priority: i.priority,
    metadata: i.metadata,
    location: i.location,
    ttl: i.healthCheck.ttl,
    isolate: i.isolate,
  };
}

/** DESIGN's limits, for an instance the server accepted. */
function checkInstance(i: InstanceState, what: string): void {
  const name = /^[A-Za-z0-9_\-.:]{1,128}$/;
  assert.ok(name.test(i.namespace) && name.test(i.service), `${what}: accepted names ${i.namespace}/${i.service}`);
  assert.ok(Number.isInteger(i.port) && i.port >= 1 && i.port <= 65535, `${what}: accepted port ${i.port}`);
  assert.ok(Number.isInteger(i.weight) && i.weight >= 0 && i.weight <= 10000, `${what}: accepted weight ${i.weight}`);
  assert.ok(Number.isInteger(i.ttl) && i.ttl >= 1 && i.ttl <= 60, `${what}: accepted ttl ${i.ttl}`);
  assert.ok(
    typeof i.host === 'string' && i.host.length >= 1 && i.host.length <= 128,
    `${what}: accepted host ${i.host}`,
  );
  assert.ok(Object.keys(i.metadata).length <= 64, `${what}: accepted ${Object.keys(i.metadata).length} metadata keys`);
  for (const s of [
    i.protocol,
    i.version,
    ...Object.keys(i.metadata),
    ...Object.values(i.metadata),
    ...Object.values(i.location),
  ]) {
    assert.ok(
      typeof s === 'string' && !/\p{Cs}/u.test(s),
      `${what}: accepted text that is not valid Unicode: ${JSON.stringify(s)}`,
    );
  }
}

// ---- the properties ---------------------------------------------------------------------------

// Long runs, few of them: each ends with reading the whole registry back. Two servers x RUNS x
// MIN_LENGTH is the floor of requests sent, and more than MIN_REQUESTS.
const RUNS = Number(process.env['FUZZ_HTTP_RUNS'] ?? 40);
const MIN_LENGTH = 75;
const MIN_REQUESTS = 6000;
let total = 0;

async function fuzz(clients: 'required' | 'open'): Promise<void> {
  total += await fuzzServer({
    clients,
    label: 'fuzz-http',
    runs: RUNS,
    minLength: MIN_LENGTH,
    unit: 'steps',
    items: stepArb,
    driver: (_s, h, fx) => {
      const fuzzer = new HttpFuzzer(h, fx, clients);
      return {
        apply: (ops, m) => fuzzer.step(ops, m),
        get requests() {
          return fuzzer.requests;
        },
        stats: fuzzer.stats,
      };
    },
  });
}

describe('fuzzing the HTTP write routes', () => {
  it('auth on, clients required: no 5xx, well-formed errors, only allowed writes, and the state matches them', async () => {
    await fuzz('required');
  });

  it('auth on, clients open: the same properties', async () => {
    await fuzz('open');
  });

  it(
    `sent at least ${MIN_REQUESTS} generated requests`,
    { skip: process.env['FUZZ_HTTP_RUNS'] !== undefined && 'run count set by FUZZ_HTTP_RUNS' },
    () => {
      assert.ok(total >= MIN_REQUESTS, `only ${total} generated requests`);
    },
  );
});
