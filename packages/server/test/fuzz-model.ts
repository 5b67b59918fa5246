import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import fc from 'fast-check';
import { ErrorCodes, type ErrorCode } from '@muster/api';
import { deriveInstanceId, looksDerived, scopedInstanceId } from '../src/naming/identity.js';
import { fuzzParams } from './fuzz-values.js';
import { spawnServer, tempDir } from './harness.js';

/**
 * The fuzz tests' expected state of the registry, kept from the writes the server answered as
 * successful and compared with what the API reads back; the rights the fixture tokens should
 * have; and a plain HTTP client that sends paths and headers exactly as generated.
 */

export interface InstanceState {
  namespace: string;
  service: string;
  host: string;
  port: number;
  protocol: string;
  version: string;
  weight: number;
  priority: number;
  metadata: Record<string, string>;
  location: Record<string, string>;
  ttl: number;
  isolate: boolean;
}
export interface ServiceState {
  comment: string;
  metadata: Record<string, string>;
}
export interface TokenState {
  name: string;
  rules: string[];
  revoked: boolean;
}

const svcKey = (ns: string, svc: string) => `${ns}\u0000${svc}`;

export class RegistryModel {
  readonly namespaces = new Map<string, { comment: string }>();
  readonly services = new Map<string, ServiceState & { namespace: string; name: string }>();
  readonly instances = new Map<string, InstanceState>();
  readonly tokens = new Map<string, TokenState>();

  service(ns: string, svc: string) {
    return this.services.get(svcKey(ns, svc));
  }
  putService(ns: string, svc: string, s: ServiceState): void {
    this.services.set(svcKey(ns, svc), { ...s, namespace: ns, name: svc });
  }
  deleteService(ns: string, svc: string): void {
    this.services.delete(svcKey(ns, svc));
    for (const id of this.instancesOf(ns, svc)) this.instances.delete(id);
  }
  servicesOf(ns: string): string[] {
    return [...this.services.values()]
      .filter((s) => s.namespace === ns)
      .map((s) => s.name)
      .sort();
  }
  instancesOf(ns: string, svc: string): string[] {
    return [...this.instances]
      .filter(([, i]) => i.namespace === ns && i.service === svc)
      .map(([id]) => id)
      .sort();
  }
  /**
   * The id the registry gives a registration in this state (the naming service's rule): the key
   * (the id given, or the endpoint's derived id) when this service holds it, or when nobody does
   * and it is not shaped like another endpoint's derived id; otherwise the key scoped to the service.
   */
  registrationId(ns: string, svc: string, given: string | undefined, host: string, port: number): string {
    const derived = deriveInstanceId(ns, svc, host, port);
    const key = given ?? derived;
    const atKey = this.instances.get(key);
    if (atKey && atKey.namespace === ns && atKey.service === svc) return key;
    const scoped = scopedInstanceId(ns, svc, key);
    if (atKey || this.instances.has(scoped) || (key !== derived && looksDerived(key))) return scoped;
    return key;
  }
  clone(): RegistryModel {
    const c = new RegistryModel();
    c.assign(this);
    return c;
  }

  /** Becomes a deep copy of another model. */
  assign(from: RegistryModel): void {
    const copy = <V>(to: Map<string, V>, src: Map<string, V>) => {
      to.clear();
      for (const [k, v] of src) to.set(k, structuredClone(v));
    };
    copy(this.namespaces, from.namespaces);
    copy(this.services, from.services);
    copy(this.instances, from.instances);
    copy(this.tokens, from.tokens);
  }

  /** The n-th of a sorted list, for generated references to "something that exists". */
  static pick<T>(list: readonly T[], n: number): T | undefined {
    return list.length === 0 ? undefined : list[n % list.length];
  }

  /** Sorted plain data, for assert.deepStrictEqual and its diff. */
  canonical(): unknown {
    const sortObj = (o: Record<string, string>) =>
      Object.fromEntries(
        Object.keys(o)
          .sort()
          .map((k) => [k, o[k]]),
      );
    return {
      namespaces: [...this.namespaces]
        .map(([n, v]) => ({ name: n, comment: v.comment }))
        .sort((a, b) => cmp(a.name, b.name)),
      services: [...this.services.values()]
        .map((s) => ({
          namespace: s.namespace,
          name: s.name,
          comment: s.comment,
          metadata: sortObj(s.metadata),
          instanceCount: this.instancesOf(s.namespace, s.name).length,
        }))
        .sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name)),
      instances: [...this.instances]
        .map(([id, i]) => ({ id, ...i, metadata: sortObj(i.metadata), location: sortObj(i.location) }))
        .sort((a, b) => cmp(a.id, b.id)),
      tokens: [...this.tokens].map(([id, t]) => ({ id, ...t })).sort((a, b) => cmp(a.id, b.id)),
    };
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// ---- rights -----------------------------------------------------------------------------------

export type Right = 'read' | 'write' | 'admin';
const RANK: Record<Right, number> = { read: 0, write: 1, admin: 2 };

/** Glob match of `*` patterns, by dynamic programming: never slow, whatever the pattern. */
export function globMatch(pattern: string, name: string): boolean {
  let prev = new Array<boolean>(name.length + 1).fill(false);
  prev[0] = true;
  for (const c of pattern) {
    const next = new Array<boolean>(name.length + 1).fill(false);
    if (c === '*') next[0] = prev[0]!;
    for (let j = 1; j <= name.length; j++)
      next[j] = c === '*' ? next[j - 1]! || prev[j]! : prev[j - 1]! && name[j - 1] === c;
    prev = next;
  }
  return prev[name.length]!;
}

/**
 * Whether stored rules (`right:ns/svc`) grant a right; `*` in the scope asks for every namespace
 * or service, which only a `*` pattern grants. An independent reading of the documented rules,
 * to catch a write the guard let through.
 */
export function grants(rules: readonly string[], right: Right, ns: string, svc: string): boolean {
  return rules.some((r) => {
    const m = /^(read|write|admin):([^/]*)\/(.*)$/.exec(r);
    if (!m || RANK[m[1] as Right] < RANK[right]) return false;
    const covers = (p: string, n: string) => (n === '*' ? p === '*' : globMatch(p, n));
    return covers(m[2]!, ns) && covers(m[3]!, svc);
  });
}

/** What a request presents: which access token (its rules) or which instance token. */
export interface Presented {
  /** Rules of a valid access token; undefined for none, an unknown one or a revoked one. */
  rules?: readonly string[];
  /** An access token that is not valid (unknown, revoked): the request must be refused. */
  badAccessToken?: boolean;
  /** A Bearer that is not an access token: an instance's heartbeatToken, right or wrong. */
  instanceToken?: string;
}

// ---- HTTP -------------------------------------------------------------------------------------

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** node:http with a keep-alive agent: the path goes out byte for byte (fetch would normalise `..`), headers may repeat. */
export class RawHttp {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  private readonly host: string;
  private readonly port: number;
  sent = 0;

  constructor(base: string) {
    const u = new URL(base);
    this.host = u.hostname;
    this.port = Number(u.port);
  }

  /**
   * Headers as [name, value, name, value...]. Host and Content-Length are added: Node adds neither
   * to a list, and without a length it sends a PUT or POST chunked, which counts as a body.
   */
  send(method: string, path: string, headers: string[] = [], body?: string): Promise<HttpAnswer> {
    this.sent++;
    const all = [
      'host',
      `${this.host}:${this.port}`,
      ...headers,
      'content-length',
      String(body === undefined ? 0 : Buffer.byteLength(body)),
    ];
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: this.host, port: this.port, method, path, headers: all, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(15_000, () => req.destroy(new Error(`no answer in 15 s to ${method} ${path.slice(0, 200)}`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** A request that must succeed with JSON, for reading state back. */
  async json(method: string, path: string, token: string, body?: unknown): Promise<any> {
    const headers = ['authorization', `Bearer ${token}`];
    if (body !== undefined) headers.push('content-type', 'application/json');
    const a = await this.send(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
    this.sent--;
    assert.ok(a.status >= 200 && a.status < 300, `${method} ${path}: ${a.status} ${a.text}`);
    return a.text === '' ? undefined : JSON.parse(a.text);
  }

  close(): void {
    this.agent.destroy();
  }
}

/** DESIGN's table, plus the transport statuses that keep their own number under a shared code. */
const STATUSES: Record<ErrorCode, number[]> = {
  INVALID_ARGUMENT: [400, 414, 415],
  UNAUTHENTICATED: [401],
  PERMISSION_DENIED: [403],
  NOT_FOUND: [404],
  ALREADY_EXISTS: [409],
  FAILED_PRECONDITION: [409],
  RESOURCE_EXHAUSTED: [413, 429],
  UNAVAILABLE: [],
  DEADLINE_EXCEEDED: [],
  INTERNAL: [],
};

/** No 5xx; an error is `{"error": {code, message, field?}}` with a code of the vocabulary and its status. */
export function checkHttpAnswer(a: HttpAnswer, method: string, what: string): void {
  assert.ok(
    a.status >= 200 && a.status < 500 && a.status !== 304,
    `${what}: status ${a.status}: ${a.text.slice(0, 500)}`,
  );
  if (a.status < 400 || method === 'HEAD') return;
  assert.match(String(a.headers['content-type']), /^application\/json/, `${what}: content type of a ${a.status}`);
  let body: any;
  assert.doesNotThrow(
    () => (body = JSON.parse(a.text)),
    `${what}: a ${a.status} without a JSON body: ${a.text.slice(0, 300)}`,
  );
  assert.ok(
    typeof body === 'object' && body !== null && Object.keys(body).join() === 'error',
    `${what}: not an error body: ${a.text.slice(0, 300)}`,
  );
  const e = body.error;
  assert.ok(
    Object.keys(e).every((k) => ['code', 'message', 'field'].includes(k)),
    `${what}: unexpected members in ${a.text.slice(0, 300)}`,
  );
  assert.ok((ErrorCodes as readonly string[]).includes(e.code), `${what}: unknown code in ${a.text.slice(0, 300)}`);
  assert.ok(typeof e.message === 'string' && e.message.length > 0, `${what}: no message in ${a.text.slice(0, 300)}`);
  assert.ok(e.field === undefined || typeof e.field === 'string', `${what}: field in ${a.text.slice(0, 300)}`);
  assert.ok(STATUSES[e.code as ErrorCode].includes(a.status), `${what}: ${e.code} answered as ${a.status}`);
}

// ---- reading the registry back ----------------------------------------------------------------

const enc = encodeURIComponent;

/** The registry as the API shows it to the admin, in the model's shape. */
export async function readState(h: RawHttp, admin: string): Promise<RegistryModel> {
  const m = new RegistryModel();
  for (const n of (await h.json('GET', '/v1/namespaces', admin)).namespaces)
    m.namespaces.set(n.name, { comment: n.comment });
  for (const t of (await h.json('GET', '/v1/tokens?revoked=true', admin)).tokens)
    m.tokens.set(t.id, { name: t.name, rules: t.rules, revoked: t.revokedAt !== undefined });
  const counts = new Map<string, number>();
  for (const ns of m.namespaces.keys()) {
    const list = await h.json('GET', `/v1/namespaces/${enc(ns)}/services?limit=1000`, admin);
    assert.equal(list.total, list.services.length, `more than 1000 services in ${ns}`);
    for (const s of list.services) {
      m.putService(ns, s.name, { comment: s.comment, metadata: s.metadata });
      counts.set(svcKey(ns, s.name), s.instanceCount);
      const d = await h.json(
        'GET',
        `/v1/namespaces/${enc(ns)}/services/${enc(s.name)}/instances?status=all&isolated=all`,
        admin,
      );
      assert.equal(d.instances.length, s.instanceCount, `${ns}/${s.name}: discovery and the service's count`);
      for (const i of d.instances) {
        assert.ok(!m.instances.has(i.id), `instance ${i.id} appears in two services`);
        m.instances.set(i.id, {
          namespace: ns,
          service: s.name,
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
        });
      }
    }
  }
  return m;
}

/** The model and the registry agree exactly. */
export async function assertMatches(
  h: RawHttp,
  admin: string,
  model: RegistryModel,
  when: string,
): Promise<RegistryModel> {
  const real = await readState(h, admin);
  assert.deepStrictEqual(
    real.canonical(),
    model.canonical(),
    `${when}: the registry differs from the successful writes`,
  );
  return real;
}

// ---- fixtures ---------------------------------------------------------------------------------

export interface Fixtures {
  admin: string;
  /** write:team/* */
  writer: string;
  /** read:*\/* */
  reader: string;
  /** A token that was revoked. */
  revoked: string;
}

export const FIXTURE_RULES: Record<'admin' | 'writer' | 'reader', string[]> = {
  admin: ['admin:*/*'],
  writer: ['write:team/*'],
  reader: ['read:*/*'],
};

/** The namespace `team` and the tokens, made through the API with the admin token made at first start. */
export async function makeFixtures(h: RawHttp, admin: string): Promise<Fixtures> {
  await h.json('POST', '/v1/namespaces', admin, { name: 'team', comment: "the writer token's" });
  const make = async (name: string, rules: string[]) =>
    (await h.json('POST', '/v1/tokens', admin, { name, rules })).secret as string;
  const fx = {
    admin,
    writer: await make('writer', FIXTURE_RULES.writer),
    reader: await make('reader', FIXTURE_RULES.reader),
    revoked: await make('revoked', ['admin:*/*']),
  };
  await h.json('DELETE', '/v1/tokens/revoked', admin);
  return fx;
}

/** The admin token a first start keeps in the data directory (it never prints it). */
export function adminTokenOf(dataDir: string): string {
  return fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
}

/** What a fuzz test drives a server with: it applies generated items and counts what it sent. */
export interface FuzzDriver<T> {
  apply(item: T, model: RegistryModel): Promise<void>;
  readonly requests: number;
  readonly stats: Map<string, number>;
  close?(): void;
}

/**
 * One fuzzing session, shared by the HTTP and gRPC fuzz tests: a server in a child process (a
 * crash or a stuck event loop shows as such, not as a frozen test), with auth on and the fixture
 * tokens; runs of generated items, each run judged against the state read back after it; the
 * server alive and healthy at the end; and after a restart, the same state (what was
 * acknowledged is what a restart loads). Answers how many requests the driver sent.
 */
export async function fuzzServer<T>(opts: {
  clients: 'required' | 'open';
  label: string;
  runs: number;
  minLength: number;
  /** What one item is called in a failure message ("steps", "calls"). */
  unit: string;
  items: fc.Arbitrary<T>;
  driver: (server: { url: string; grpcAddress: string }, h: RawHttp, fx: Fixtures) => FuzzDriver<T>;
}): Promise<number> {
  const dataDir = tempDir('muster-fuzz-');
  const flags = {
    'auth.enabled': true,
    'auth.clients': opts.clients,
    'health.cleanupAfter': '0',
    'limits.writesPerAddress': 0,
    'limits.writesPerToken': 0,
  };
  let s = await spawnServer(flags, dataDir);
  let h = new RawHttp(s.url);
  const fx = await makeFixtures(h, adminTokenOf(dataDir));
  const driver = opts.driver(s, h, fx);
  let model: RegistryModel | undefined;
  try {
    const runs = fc.array(opts.items, { minLength: opts.minLength, maxLength: opts.minLength + 40, size: 'max' });
    await fc.assert(
      fc.asyncProperty(runs, async (items) => {
        // Each run starts from what the registry holds (a replayed seed is judged on its own).
        const m = model ?? (await readState(h, fx.admin));
        model = undefined;
        for (const item of items) await driver.apply(item, m);
        model = await assertMatches(h, fx.admin, m, `after ${items.length} ${opts.unit}`);
      }),
      fuzzParams(`${opts.label} (clients ${opts.clients})`, opts.runs),
    );
    assert.equal(s.child.exitCode, null, 'the server is still running');
    assert.equal((await h.send('GET', '/healthz')).status, 200, 'the server is healthy after the fuzzing');
    const before = model ?? (await readState(h, fx.admin));
    h.close();
    await s.stop();
    s = await spawnServer(flags, dataDir);
    h = new RawHttp(s.url);
    await assertMatches(h, fx.admin, before, 'after a restart');
  } finally {
    driver.close?.();
    h.close();
    await s.stop();
  }
  if (process.env['FUZZ_STATS'])
    console.log(opts.label, opts.clients, driver.requests, Object.fromEntries([...driver.stats].sort()));
  return driver.requests;
}
