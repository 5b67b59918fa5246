import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { GRPC_FIELD_KEY } from '@muster/api';
import { isUndecodable, loadRegistryPackage, registryDefinition } from '../src/api/grpc/codec.js';
import { registryClient, type RegistryClient } from './grpc-client.js';
import {
  FIXTURE_RULES,
  fuzzServer,
  grants,
  RegistryModel,
  type Fixtures,
  type InstanceState,
  type Presented,
} from './fuzz-model.js';
import {
  hostArb,
  ID_POOL,
  metadataArb,
  nameFrom,
  NS_POOL,
  portArb,
  SVC_POOL,
  textArb,
  weirdString,
} from './fuzz-values.js';

/**
 * Property-based fuzzing of muster.v1.Registry (fast-check): Register, Deregister, Heartbeat and
 * HeartbeatStream as generated messages through the grpc-js stub and as raw bytes (valid
 * encodings broken by flips, cuts and splices, or plain noise), with right, wrong and garbled
 * metadata; Discover and Watch read along. No call may end INTERNAL or UNKNOWN, every error is a
 * Muster code with its message, successes must be allowed, and after each run the registry (read
 * over HTTP) holds exactly what the successful calls made. FUZZ_SEED=<seed> replays a failure.
 */

// ---- the server's own decoding, to know what a sent message means ----------------------------

const definition = registryDefinition(await loadRegistryPackage());
const METHODS = ['Register', 'Deregister', 'Heartbeat', 'HeartbeatStream', 'Discover', 'Watch'] as const;
type Method = (typeof METHODS)[number];
const codec = (m: Method) => definition[m]!;
/** What the server decodes from these bytes: the message, or undefined when they do not decode. */
function decoded(m: Method, bytes: Buffer): any {
  const v = codec(m).requestDeserialize(bytes);
  return isUndecodable(v) ? undefined : v;
}

/** A client that sends the bytes given, for every method. */
function rawClient(address: string): RegistryClient {
  const raw = (name: Method) => ({
    path: `/muster.v1.Registry/${name}`,
    requestStream: name === 'HeartbeatStream',
    responseStream: name === 'HeartbeatStream' || name === 'Watch',
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  });
  const Raw = grpc.makeGenericClientConstructor(Object.fromEntries(METHODS.map((m) => [m, raw(m)])), 'RawRegistry');
  return new Raw(address, grpc.credentials.createInsecure()) as RegistryClient;
}

// ---- what is generated ------------------------------------------------------------------------

type Ref = { k: 'known'; i: number } | { k: 'is'; v: string };
type Caller = 'none' | 'admin' | 'writer' | 'reader' | 'revoked' | 'mstUnknown' | 'own' | 'other' | 'garbage';
// Not generated: two `authorization` values; grpc-js refuses to send them (INTERNAL on the client).
type AuthForm = 'Bearer' | 'bearer' | 'Basic' | 'bare' | 'two' | 'binary';
type ByteMutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'cut'; frac: number }
  | { op: 'splice'; at: number; bytes: Uint8Array }
  | { op: 'append'; bytes: Uint8Array }
  | { op: 'noise'; bytes: Uint8Array }
  | { op: 'wiretype'; at: number; type: number };

/** How a request goes out: through the stub as a message, or as (broken) bytes. */
type Send = { as: 'stub' } | { as: 'bytes'; mutations: ByteMutation[] };

interface Op {
  method: Method;
  /** The message fields; references in `inst` are resolved when the call is made. */
  msg: Record<string, unknown>;
  inst: Ref;
  /** A registration below 3 registers an existing instance again. */
  again: number;
  send: Send;
  /** Who the metadata says is calling, and in which form; who the message's heartbeat_token is. */
  caller: Caller;
  auth: AuthForm;
  token: Caller;
  idx: number;
  garbage: string;
  extra: Array<[string, string]>;
  /** HeartbeatStream: the batches, each items or (true) bytes that do not decode. */
  batches: Array<Array<{ inst: Ref; token: Caller; idx: number }> | true>;
}

const instRef: fc.Arbitrary<Ref> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('known' as const), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('is' as const), v: nameFrom(ID_POOL) }) },
);
/** grpc-js refuses anything but printable ASCII in a text metadata value. */
const asciiText = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 30,
});
const u32 = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 61, 10001, 65536, 1000001, 2 ** 31, 2 ** 32 - 1) },
  { weight: 1, arbitrary: fc.nat() },
);
const maybe = <T>(a: fc.Arbitrary<T>, weight = 2) =>
  fc.oneof({ weight, arbitrary: a }, { weight: 1, arbitrary: fc.constant(undefined) });

/** A registration that is valid, field by field (so the registry fills up). */
const cleanRegisterMsg = fc.record(
  {
    namespace: fc.constantFrom(...NS_POOL, ''),
    service: fc.constantFrom(...SVC_POOL),
    id: maybe(fc.constantFrom(...ID_POOL), 1),
    host: fc.constantFrom('10.0.0.1', '10.0.0.2', 'host-a', '::1', 'db.example.com'),
    port: portArb,
    protocol: maybe(fc.constantFrom('http', 'grpc')),
    version: maybe(fc.constantFrom('1.0', 'v2')),
    weight: maybe(fc.integer({ min: 0, max: 10000 })),
    priority: maybe(fc.integer({ min: 0, max: 1_000_000 })),
    metadata: maybe(
      fc.dictionary(fc.constantFrom('env', 'zone', 'ключ', '🔑'), fc.constantFrom('prod', 'dev', ''), { maxKeys: 3 }),
    ),
    location: maybe(
      fc.record({ region: fc.constantFrom('eu', 'us', ''), zone: fc.constantFrom('a', 'b') }, { requiredKeys: [] }),
    ),
    healthCheck: maybe(fc.record({ ttl: fc.integer({ min: 1, max: 60 }) })),
    isolate: maybe(fc.boolean(), 1),
  },
  { requiredKeys: ['service', 'host', 'port'] },
);

const wildRegisterMsg = fc.record(
  {
    namespace: fc.oneof({ weight: 3, arbitrary: nameFrom(NS_POOL) }, { weight: 2, arbitrary: fc.constant('') }),
    service: nameFrom(SVC_POOL),
    id: maybe(nameFrom(ID_POOL), 1),
    host: fc.oneof(
      { weight: 8, arbitrary: hostArb },
      { weight: 1, arbitrary: fc.constantFrom('', ' ') },
      { weight: 1, arbitrary: weirdString },
    ),
    port: fc.oneof({ weight: 8, arbitrary: portArb }, { weight: 1, arbitrary: fc.constantFrom(0, 65536, 2 ** 32 - 1) }),
    protocol: maybe(textArb),
    version: maybe(textArb),
    weight: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 10000 }) }, { weight: 1, arbitrary: u32 }),
    priority: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 1_000_000 }) }, { weight: 1, arbitrary: u32 }),
    metadata: maybe(metadataArb),
    location: maybe(fc.record({ region: textArb, zone: textArb, campus: textArb }, { requiredKeys: [] })),
    healthCheck: maybe(
      fc.record(
        {
          type: fc.oneof(
            { weight: 5, arbitrary: fc.constantFrom('heartbeat', '') },
            { weight: 1, arbitrary: fc.constantFrom('tcp', 'HEARTBEAT') },
          ),
          ttl: fc.oneof(fc.integer({ min: 1, max: 60 }), u32),
        },
        { requiredKeys: [] },
      ),
    ),
    isolate: maybe(fc.boolean(), 1),
  },
  { requiredKeys: ['service'] },
);
const filterMsg = maybe(
  fc.record(
    {
      status: fc.constantFrom('all', 'healthy', 'unhealthy', '', 'sick'),
      isolated: fc.constantFrom('all', 'true', 'false', '', 'maybe'),
      metadata: metadataArb,
      region: textArb,
      zone: textArb,
      campus: textArb,
    },
    { requiredKeys: ['status', 'isolated'] },
  ),
  2,
);
const readMsg = fc.record(
  {
    namespace: fc.oneof(nameFrom(NS_POOL), fc.constant('')),
    service: nameFrom(SVC_POOL),
    revision: maybe(fc.nat(200), 1),
    filter: filterMsg,
    waitMs: fc.oneof(
      { weight: 6, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom(0, 20, 60001, 2 ** 32 - 1) },
    ),
  },
  { requiredKeys: ['service'] },
);

const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('cut' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ op: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
  fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
  fc.record({ op: fc.constant('noise' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ op: fc.constant('wiretype' as const), at: fc.nat(), type: fc.integer({ min: 0, max: 7 }) }),
);
const sendArb: fc.Arbitrary<Send> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ as: 'stub' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ as: fc.constant('bytes' as const), mutations: fc.array(byteMutation, { maxLength: 3 }) }),
  },
);
const callerArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Caller>('admin') },
  { weight: 4, arbitrary: fc.constant<Caller>('none') },
  ...(['writer', 'reader', 'revoked', 'mstUnknown', 'own', 'other', 'garbage'] as const).map((c) => ({
    weight: 1,
    arbitrary: fc.constant<Caller>(c),
  })),
);
const tokenArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Caller>('own') },
  { weight: 1, arbitrary: fc.constantFrom<Caller>('none', 'other', 'garbage', 'admin') },
);

const common = {
  inst: instRef,
  again: fc.integer({ min: 0, max: 9 }),
  send: sendArb,
  caller: callerArb,
  token: tokenArb,
  idx: fc.nat(),
  garbage: asciiText,
  auth: fc.oneof(
    { weight: 12, arbitrary: fc.constant<AuthForm>('Bearer') },
    { weight: 1, arbitrary: fc.constantFrom<AuthForm>('bearer', 'Basic', 'bare', 'two', 'binary') },
  ),
  extra: fc.array(
    fc.tuple(
      fc.constantFrom('x-fuzz', 'authorization', 'user-agent-x', 'muster-error-field', 'x-request-id'),
      asciiText,
    ),
    { maxLength: 2 },
  ),
  batches: fc.constant([]),
};
const tokenMsg = fc.record({ heartbeatToken: fc.constant('') });

function describeOp(o: Op): string {
  const send = o.send.as === 'stub' ? 'stub' : `bytes[${o.send.mutations.map((m) => m.op).join(',')}]`;
  const batches =
    o.method === 'HeartbeatStream'
      ? ` batches=${o.batches.map((b) => (b === true ? 'garbage' : b.length)).join(',')}`
      : '';
  const again = o.method === 'Register' && o.again < 3 ? ' again' : '';
  return `${o.method}${again} ${send} caller=${o.caller}/${o.auth} token=${o.token} ${JSON.stringify(o.msg).slice(0, 160)}${batches}${o.extra.length ? ` metadata=${JSON.stringify(o.extra)}` : ''}`;
}
const op = (
  method: Method,
  msg: fc.Arbitrary<Record<string, unknown>>,
  extra: Partial<Record<keyof typeof common, fc.Arbitrary<unknown>>> = {},
) =>
  fc.record({ ...common, ...extra, msg }).map((o) => {
    const out = { ...o, method } as Op;
    return Object.assign(out, { [fc.toStringMethod]: () => describeOp(out) });
  });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: op('Register', fc.oneof(cleanRegisterMsg, wildRegisterMsg) as fc.Arbitrary<Record<string, unknown>>),
  },
  { weight: 4, arbitrary: op('Deregister', tokenMsg) },
  { weight: 4, arbitrary: op('Heartbeat', tokenMsg) },
  {
    weight: 3,
    arbitrary: op('HeartbeatStream', fc.constant({}), {
      batches: fc.array(
        fc.oneof(
          {
            weight: 6,
            arbitrary: fc.array(fc.record({ inst: instRef, token: tokenArb, idx: fc.nat() }), { maxLength: 4 }),
          },
          { weight: 1, arbitrary: fc.constant(true as const) },
        ),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  { weight: 3, arbitrary: op('Discover', readMsg as fc.Arbitrary<Record<string, unknown>>) },
  {
    weight: 1,
    arbitrary: op('Watch', readMsg.map(({ waitMs: _w, ...r }) => r) as fc.Arbitrary<Record<string, unknown>>),
  },
);

// ---- bytes ------------------------------------------------------------------------------------

function mutateBytes(b: Buffer, ms: readonly ByteMutation[]): Buffer {
  let out = Buffer.from(b);
  for (const m of ms) {
    switch (m.op) {
      case 'flip':
        if (out.length > 0) out[m.at % out.length]! ^= 1 << m.bit;
        break;
      case 'cut':
        out = out.subarray(0, Math.floor(m.frac * out.length));
        break;
      case 'splice': {
        const at = out.length === 0 ? 0 : m.at % out.length;
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      }
      case 'append':
        out = Buffer.concat([out, m.bytes]);
        break;
      case 'noise':
        out = Buffer.from(m.bytes);
        break;
      case 'wiretype':
        // The first byte of a field is its tag: the same field number, another wire type.
        if (out.length > 0) out[m.at % out.length] = (out[m.at % out.length]! & ~7) | m.type;
        break;
    }
  }
  return out;
}

// ---- running the calls ------------------------------------------------------------------------

const S = grpc.status;
/** The statuses a Muster error travels as; INTERNAL and UNKNOWN are bugs, the rest is transport. */
const MUSTER_STATUSES = new Set<number>([
  S.INVALID_ARGUMENT,
  S.NOT_FOUND,
  S.ALREADY_EXISTS,
  S.PERMISSION_DENIED,
  S.RESOURCE_EXHAUSTED,
  S.FAILED_PRECONDITION,
  S.UNAUTHENTICATED,
]);
const isAccessToken = (s: string) => /^mst_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/.test(s);

function checkStatus(e: grpc.ServiceError, what: string): void {
  assert.ok(MUSTER_STATUSES.has(e.code), `${what}: ended ${grpc.status[e.code] ?? e.code}: ${e.details}`);
  assert.ok(typeof e.details === 'string' && e.details.length > 0, `${what}: no message`);
  const field = e.metadata?.get(GRPC_FIELD_KEY)[0];
  if (field !== undefined)
    assert.ok(
      e.details.startsWith(`${field}: `),
      `${what}: the message does not start with its field ${String(field)}: ${e.details}`,
    );
}

class GrpcFuzzer {
  readonly instanceTokens = new Map<string, string>();
  readonly issued: string[] = [];
  requests = 0;
  readonly stats = new Map<string, number>();

  constructor(
    readonly stub: RegistryClient,
    readonly raw: RegistryClient,
    readonly fx: Fixtures,
    readonly clients: 'required' | 'open',
  ) {}

  private count(key: string): void {
    this.stats.set(key, (this.stats.get(key) ?? 0) + 1);
  }

  private credential(c: Caller, idx: number, garbage: string, target: string | undefined): string | undefined {
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
        return `mst_${idx.toString(16).padStart(12, '0').slice(-12)}_${'B'.repeat(43)}`;
      case 'own':
        return target === undefined ? undefined : this.instanceTokens.get(target);
      case 'other':
        return RegistryModel.pick(this.issued, idx);
      case 'garbage':
        return garbage;
    }
  }

  private rulesOf(secret: string): readonly string[] | undefined {
    return secret === this.fx.admin
      ? FIXTURE_RULES.admin
      : secret === this.fx.writer
        ? FIXTURE_RULES.writer
        : secret === this.fx.reader
          ? FIXTURE_RULES.reader
          : undefined;
  }

  /** The call's metadata, and what the server makes of its first `authorization` value. */
  private metadata(o: Op, secret: string | undefined): { md: grpc.Metadata; who: Presented } {
    const md = new grpc.Metadata();
    let first: string | undefined;
    if (secret !== undefined) {
      if (o.auth === 'binary') md.set('authorization-bin', Buffer.from(`Bearer ${secret}`));
      else {
        first = {
          Bearer: `Bearer ${secret}`,
          bearer: `bearer ${secret}`,
          Basic: `Basic ${secret}`,
          bare: secret,
          two: `Bearer ${secret} ${secret}`,
        }[o.auth];
        md.set('authorization', first);
      }
    }
    for (const [k, v] of o.extra) {
      if (k !== 'authorization') md.add(k, v);
      else if (first === undefined) md.set(k, (first = v));
    }
    const bearer = first === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(first.trim())?.[1];
    if (bearer === undefined) return { md, who: {} };
    if (!isAccessToken(bearer)) return { md, who: { instanceToken: bearer } };
    const rules = this.rulesOf(bearer);
    return { md, who: rules ? { rules } : { badAccessToken: true } };
  }

  async run(o: Op, m: RegistryModel): Promise<void> {
    const ids = [...m.instances.keys()].sort();
    const id = o.inst.k === 'known' ? (RegistryModel.pick(ids, o.inst.i) ?? 'i1') : o.inst.v;
    const msg: Record<string, unknown> = { ...o.msg };
    if (o.method === 'Register') {
      const existing = m.instances.get(id);
      if (o.again < 3 && existing)
        Object.assign(msg, {
          namespace: existing.namespace,
          service: existing.service,
          id,
          host: existing.host,
          port: existing.port,
        });
      const [ns, svc, given, host, port] = [
        (msg['namespace'] as string) || 'default',
        msg['service'],
        msg['id'] || undefined,
        msg['host'],
        msg['port'],
      ];
      const target =
        typeof host === 'string' &&
        typeof port === 'number' &&
        typeof svc === 'string' &&
        (given === undefined || typeof given === 'string')
          ? m.registrationId(ns, svc, given, host, port)
          : typeof given === 'string'
            ? given
            : undefined;
      const t = this.credential(o.token, o.idx, o.garbage, target);
      if (t !== undefined) msg['heartbeatToken'] = t;
    }
    if (o.method === 'Deregister' || o.method === 'Heartbeat') {
      msg['id'] = id;
      const t = this.credential(o.token, o.idx, o.garbage, id);
      if (t !== undefined) msg['heartbeatToken'] = t;
    }
    if (o.method === 'Discover' || o.method === 'Watch') {
      // Half of the reads look at a service that exists, where the answer can be checked.
      if (o.inst.k === 'known' && m.services.size > 0) {
        const s = RegistryModel.pick(
          [...m.services.values()].sort((a, b) => (a.namespace + a.name < b.namespace + b.name ? -1 : 1)),
          o.inst.i,
        )!;
        Object.assign(msg, { namespace: s.namespace, service: s.name });
      }
    }
    const secret = this.credential(o.caller, o.idx, o.garbage, o.method === 'Register' ? undefined : id);
    const { md, who } = this.metadata(o, secret);
    const what = describeOp({ ...o, msg });

    if (o.method === 'HeartbeatStream') return this.stream(o, m, md, who, what);
    if (o.method === 'Watch') return this.watch(o, msg, m, md, what);

    const c = codec(o.method);
    const bytes =
      o.send.as === 'stub' ? c.requestSerialize(msg) : mutateBytes(c.requestSerialize(msg), o.send.mutations);
    const seen = decoded(o.method, bytes);
    // Noise can decode to a long-poll on the current revision: a wait, not a finding.
    if (o.method === 'Discover' && seen?.waitMs > 1000) return;
    this.requests++;
    let res: any;
    try {
      res =
        o.send.as === 'stub'
          ? await this.unary(this.stub, o.method, msg, md)
          : c.responseDeserialize(await this.unary(this.raw, o.method, bytes, md));
    } catch (err) {
      const e = err as grpc.ServiceError;
      this.count(`${o.method} ${grpc.status[e.code]}`);
      checkStatus(e, what);
      return;
    }
    this.count(`${o.method} OK`);
    assert.ok(seen !== undefined, `${what}: bytes that do not decode were answered OK`);
    assert.ok(!who.badAccessToken, `${what}: an unknown or revoked access token was accepted`);
    if (o.method === 'Discover') return this.checkRead(seen, res, m, what);
    this.applySuccess(o.method, seen, res, who, m, what);
  }

  private unary(client: RegistryClient, method: Method, req: unknown, md: grpc.Metadata): Promise<any> {
    return new Promise((resolve, reject) => {
      client[method](req, md, { deadline: Date.now() + 15_000 }, (err: grpc.ServiceError | null, res: unknown) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  private applySuccess(method: Method, req: any, res: any, who: Presented, m: RegistryModel, what: string): void {
    const may = (ns: string, svc: string) => who.rules !== undefined && grants(who.rules, 'write', ns, svc);
    const token: string | undefined = (req.heartbeatToken || undefined) ?? who.instanceToken;
    const owns = (id: string) => token !== undefined && token === this.instanceTokens.get(id);
    if (method === 'Register') {
      const ns: string = req.namespace || 'default';
      const svc: string = req.service ?? '';
      const inst = res.instance;
      const id = m.registrationId(ns, svc, req.id || undefined, req.host, req.port);
      const prev = m.instances.get(id);
      if (who.rules !== undefined || this.clients === 'required') {
        assert.ok(
          may(ns, svc) || (who.rules === undefined && prev !== undefined && owns(id)),
          `${what}: registered without the right`,
        );
      }
      assert.ok(m.namespaces.has(ns), `${what}: registered in a missing namespace`);
      assert.ok(
        !prev || req.isolate === undefined || req.isolate === prev.isolate || may(ns, svc),
        `${what}: changed an instance's isolation without write`,
      );
      assert.ok(
        !prev || (prev.namespace === ns && prev.service === svc),
        `${what}: took over another service's instance id`,
      );
      assert.equal(
        Boolean(res.created),
        !prev,
        `${what}: created is ${res.created} for ${prev ? 'a known' : 'an unknown'} instance`,
      );
      // proto3: '' and 0 are "not given", and so are empty location and health check members.
      const compact = (o: Record<string, unknown> | undefined) =>
        Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== '' && v !== undefined));
      const hc = compact(req.healthCheck);
      const want: InstanceState = {
        namespace: ns,
        service: svc,
        host: req.host,
        port: req.port,
        protocol: req.protocol ?? '',
        version: req.version ?? '',
        weight: req.weight ?? 100,
        priority: req.priority ?? 0,
        metadata: req.metadata ?? {},
        location: compact(req.location) as Record<string, string>,
        ttl: (hc['ttl'] as number | undefined) ?? 5,
        isolate: req.isolate ?? prev?.isolate ?? false,
      };
      const got: InstanceState = {
        namespace: inst.namespace,
        service: inst.service,
        host: inst.host ?? '',
        port: inst.port ?? 0,
        protocol: inst.protocol ?? '',
        version: inst.version ?? '',
        weight: inst.weight ?? 0,
        priority: inst.priority ?? 0,
        metadata: inst.metadata ?? {},
        location: inst.location ?? {},
        ttl: inst.healthCheck?.ttl ?? 0,
        isolate: inst.isolate ?? false,
      };
      assert.deepEqual(got, want, `${what}: the answer differs from the request`);
      assert.equal(inst.id, id, what);
      if (!m.service(ns, svc)) m.putService(ns, svc, { comment: '', metadata: {} });
      m.instances.set(id, want);
      this.instanceTokens.set(id, res.heartbeatToken);
      this.issued.push(res.heartbeatToken);
      return;
    }
    const id: string = req.id ?? '';
    const cur = m.instances.get(id);
    assert.ok(cur, `${what}: ${method} of an instance that does not exist`);
    assert.ok(owns(id) || may(cur.namespace, cur.service), `${what}: ${method} without the instance's token or write`);
    if (method === 'Deregister') m.instances.delete(id);
  }

  /** A successful read of a service shows what the model holds (when it asks for every instance). */
  private checkRead(req: any, res: any, m: RegistryModel, what: string): void {
    const ns: string = req.namespace || 'default';
    assert.equal(res.namespace, ns, what);
    assert.ok(m.service(ns, res.service), `${what}: a read answered for a service that does not exist`);
    if (
      res.unchanged ||
      req.filter?.status !== 'all' ||
      req.filter?.isolated !== 'all' ||
      req.filter?.metadata ||
      req.filter?.region ||
      req.filter?.zone ||
      req.filter?.campus
    )
      return;
    assert.deepEqual(
      (res.instances ?? []).map((i: { id: string }) => i.id).sort(),
      m.instancesOf(ns, res.service),
      `${what}: the answer's instances`,
    );
  }

  private stream(o: Op, m: RegistryModel, md: grpc.Metadata, who: Presented, what: string): Promise<void> {
    const ids = [...m.instances.keys()].sort();
    const batches = o.batches.map((b) =>
      b === true
        ? true
        : b.map((it) => {
            const id = it.inst.k === 'known' ? (RegistryModel.pick(ids, it.inst.i) ?? 'i1') : it.inst.v;
            const t = this.credential(it.token, it.idx, o.garbage, id);
            return t === undefined ? { id } : { id, heartbeatToken: t };
          }),
    );
    const c = codec('HeartbeatStream');
    // A length that runs past the end: a batch that does not decode.
    const encoded = batches.map((b) =>
      b === true ? Buffer.from([0x0a, 0x05, 0x0a]) : c.requestSerialize({ heartbeats: b }),
    );
    const viaStub = o.send.as === 'stub' && !batches.includes(true);
    const call = viaStub
      ? this.stub['HeartbeatStream'](md, { deadline: Date.now() + 15_000 })
      : this.raw['HeartbeatStream'](md, { deadline: Date.now() + 15_000 });
    this.requests += batches.length;
    return new Promise<void>((resolve, reject) => {
      const answers: any[] = [];
      call.on('data', (d: any) => answers.push(viaStub ? d : c.responseDeserialize(d)));
      call.on('error', (e: grpc.ServiceError) => {
        try {
          this.count(`HeartbeatStream ${grpc.status[e.code]}`);
          checkStatus(e, what);
          if (e.code !== S.INVALID_ARGUMENT)
            assert.equal(answers.length, 0, `${what}: ended ${grpc.status[e.code]} after answers`);
          this.checkBatches(batches, answers, who, m, what, true);
          resolve();
        } catch (err) {
          reject(err);
        }
      });
      call.on('end', () => {
        try {
          this.count('HeartbeatStream OK');
          assert.ok(!who.badAccessToken, `${what}: an unknown or revoked access token was accepted`);
          this.checkBatches(batches, answers, who, m, what, false);
          resolve();
        } catch (err) {
          reject(err);
        }
      });
      for (const [n, b] of batches.entries()) call.write(viaStub ? { heartbeats: b } : encoded[n]);
      call.end();
    });
  }

  /** One answer per batch up to the first that does not decode; each item ok only with its token or write. */
  private checkBatches(
    batches: Array<true | Array<{ id: string; heartbeatToken?: string }>>,
    answers: any[],
    who: Presented,
    m: RegistryModel,
    what: string,
    failed: boolean,
  ): void {
    const good = batches.indexOf(true) < 0 ? batches.length : batches.indexOf(true);
    if (!failed) assert.equal(answers.length, good, `${what}: ${answers.length} answers to ${good} batches`);
    else assert.ok(answers.length <= good, what);
    answers.forEach((a, n) => {
      const items = batches[n] as Array<{ id: string; heartbeatToken?: string }>;
      const results = a.results ?? [];
      assert.equal(results.length, items.length, `${what}: batch ${n}`);
      results.forEach((r: any, k: number) => {
        const it = items[k]!;
        // protobuf.js writes a lone surrogate as bytes that no decoder reads back the same.
        if (!/\p{Cs}/u.test(it.id)) assert.equal(r.id ?? '', it.id, what);
        if (!r.ok) {
          assert.ok(
            r.error && ['INVALID_ARGUMENT', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'NOT_FOUND'].includes(r.error.code),
            `${what}: item ${k}: ${JSON.stringify(r)}`,
          );
          return;
        }
        const cur = m.instances.get(it.id);
        assert.ok(cur, `${what}: heartbeat of an instance that does not exist`);
        const may = who.rules !== undefined && grants(who.rules, 'write', cur.namespace, cur.service);
        assert.ok(
          (it.heartbeatToken || undefined) === this.instanceTokens.get(it.id) || may,
          `${what}: item ${k} accepted without its token`,
        );
      });
    });
  }

  /** Watch: the first snapshot (or the error), then the call is cancelled. */
  private watch(o: Op, msg: Record<string, unknown>, m: RegistryModel, md: grpc.Metadata, what: string): Promise<void> {
    const c = codec('Watch');
    const bytes =
      o.send.as === 'stub' ? c.requestSerialize(msg) : mutateBytes(c.requestSerialize(msg), o.send.mutations);
    const seen = decoded('Watch', bytes);
    const call = o.send.as === 'stub' ? this.stub['Watch'](msg, md) : this.raw['Watch'](bytes, md);
    this.requests++;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const done = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try {
          f();
          resolve();
        } catch (err) {
          reject(err);
        } finally {
          call.cancel();
        }
      };
      // With a revision the first snapshot comes only if it moved: not waiting long for it.
      const timer = setTimeout(() => done(() => this.count('Watch quiet')), seen?.revision !== undefined ? 200 : 5000);
      call.on('data', (d: any) =>
        done(() => {
          this.count('Watch OK');
          assert.ok(seen !== undefined, `${what}: bytes that do not decode opened a watch`);
          this.checkRead(seen, o.send.as === 'stub' ? d : c.responseDeserialize(d), m, what);
        }),
      );
      call.on('error', (e: grpc.ServiceError) =>
        done(() => {
          this.count(`Watch ${grpc.status[e.code]}`);
          checkStatus(e, what);
        }),
      );
    });
  }
}

// ---- the properties ---------------------------------------------------------------------------

// Long runs, few of them: each ends with reading the whole registry back. Two servers x RUNS x
// MIN_LENGTH is the floor of requests sent, and more than MIN_REQUESTS.
const RUNS = Number(process.env['FUZZ_GRPC_RUNS'] ?? 30);
const MIN_LENGTH = 70;
const MIN_REQUESTS = 4000;
let total = 0;

async function fuzz(clients: 'required' | 'open'): Promise<void> {
  total += await fuzzServer({
    clients,
    label: 'fuzz-grpc',
    runs: RUNS,
    minLength: MIN_LENGTH,
    unit: 'calls',
    items: opArb,
    driver: (server, _h, fx) => {
      const stub = registryClient(server.grpcAddress);
      const raw = rawClient(server.grpcAddress);
      const fuzzer = new GrpcFuzzer(stub, raw, fx, clients);
      return {
        apply: (op, m) => fuzzer.run(op, m),
        get requests() {
          return fuzzer.requests;
        },
        stats: fuzzer.stats,
        close: () => (stub.close(), raw.close()),
      };
    },
  });
}

describe('fuzzing the gRPC Registry', () => {
  it('auth on, clients required: no INTERNAL or UNKNOWN, Muster codes, only allowed writes, and the state matches them', async () => {
    await fuzz('required');
  });

  it('auth on, clients open: the same properties', async () => {
    await fuzz('open');
  });

  it(
    `sent at least ${MIN_REQUESTS} generated calls and stream messages`,
    { skip: process.env['FUZZ_GRPC_RUNS'] !== undefined && 'run count set by FUZZ_GRPC_RUNS' },
    () => {
      assert.ok(total >= MIN_REQUESTS, `only ${total} generated calls`);
    },
  );
});
