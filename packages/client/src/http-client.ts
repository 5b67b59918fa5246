import type {
  AccessToken,
  ClusterStatus,
  CreateTokenRequest,
  CreateTokenResponse,
  DiscoverFilter,
  DiscoverResponse,
  EventsResponse,
  EventType,
  HeartbeatBatchResponse,
  HeartbeatItem,
  Instance,
  InstancePatch,
  Metadata,
  Namespace,
  Readiness,
  RegisterRequest,
  RegisterResponse,
  RegistryEvent,
  Service,
  ServiceVerificationInput,
  TokenSelf,
} from '@muster/api';
import { LIMITS } from '@muster/api';
import { filterParams, seg, setDefined } from './query.js';
import { ReadYourWrites } from './read-your-writes.js';
import type { TlsOptions } from './tls.js';
import { HttpTransport, normalizeServer, type CallOptions } from './transport.js';
import { WatchStream, type SnapshotHandler, type Watch } from './watch.js';

export interface MusterHttpClientOptions {
  /** Base URL of a Muster server; default env MUSTER_SERVER, else http://127.0.0.1:8090. */
  server?: string;
  /** Per-request timeout; a long poll gets its wait on top. Default 10 s. */
  timeoutMs?: number;
  /** An access token (`mst_...`, from `muster tokens create`); default env MUSTER_TOKEN. */
  token?: string;
  /** For an https:// server: the CA to trust, and a client certificate if the server requires one. */
  tls?: TlsOptions;
  /**
   * Read-your-writes: every call carries the revision of this client's last write, so a node of
   * a cluster answers only once it has applied it. Default: on, for this client alone; pass one
   * ReadYourWrites to several clients (of several nodes) to share it; false turns it off.
   */
  readYourWrites?: ReadYourWrites | false;
}

export interface NamespaceInput {
  name: string;
  comment?: string;
}

export interface ServiceInput {
  name: string;
  comment?: string;
  metadata?: Metadata;
  /** Verified registration: new instances stay invisible until they answer the challenge (docs/security.md). */
  verification?: ServiceVerificationInput;
}

export interface ServicePatch {
  comment?: string;
  metadata?: Metadata;
  /** Set or replace the setting (the whole of it: a path left out is the default); null turns it off. */
  verification?: ServiceVerificationInput | null;
}

export interface ServiceListOptions extends CallOptions {
  offset?: number;
  limit?: number;
  /** Only services whose name starts with this. */
  prefix?: string;
}

export interface ServiceList {
  /** Services matching the prefix in all, not just this page. */
  total: number;
  services: Service[];
}

export interface DiscoverOptions extends DiscoverFilter, CallOptions {
  /** The revision the caller holds: an unchanged service answers NotModified. */
  revision?: number;
  /** With `revision`: wait up to this long (at most 60 s) for a change before answering. */
  waitMs?: number;
}

/** Discovery's answer when the service still has the revision the caller holds (HTTP 304). */
export interface NotModified {
  notModified: true;
  revision: number;
  /** Cluster mode only, while the answering node cannot read the shared store: why (the `x-muster-stale` header). */
  staleReason?: string;
}

export type DiscoverResult = (DiscoverResponse & { notModified: false }) | NotModified;

export interface EventQuery extends CallOptions {
  namespace?: string;
  service?: string;
  instance?: string;
  type?: EventType | EventType[];
  /** A time, or a duration ago the server understands (`10m`, `2h`). */
  since?: Date | string;
  /** Only events with a larger id: how a reader pages forward without gaps. */
  after?: number;
  limit?: number;
  /** Newest first (`desc`, the default) or oldest first. */
  order?: 'asc' | 'desc';
}

export interface WatchOptions extends DiscoverFilter {
  /** Watch a service that does not exist (yet) as an empty one instead of rejecting with NOT_FOUND. */
  allowMissing?: boolean;
  signal?: AbortSignal;
  /** How long to wait for the stream to open; once open it lasts until closed. */
  timeoutMs?: number;
}

const DEFAULT_SERVER = 'http://127.0.0.1:8090';

/**
 * The whole native HTTP API v1, one method per route, typed with the shared wire types. Every
 * failure is a MusterError (network ones are UNAVAILABLE or DEADLINE_EXCEEDED). The one thing it
 * keeps between calls is the revision of its last write (`readYourWrites`): heartbeat loops,
 * caches and balancing belong to the layer above.
 */
export class MusterHttpClient {
  readonly server: string;
  readonly timeoutMs: number;
  /** The revision of this client's own writes, carried by its calls; undefined when turned off. */
  readonly readYourWrites: ReadYourWrites | undefined;
  protected readonly http: HttpTransport;

  constructor(opts: MusterHttpClientOptions = {}) {
    this.server = normalizeServer(opts.server ?? process.env['MUSTER_SERVER'] ?? DEFAULT_SERVER);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.readYourWrites = opts.readYourWrites === false ? undefined : (opts.readYourWrites ?? new ReadYourWrites());
    this.http = new HttpTransport(
      this.server,
      this.timeoutMs,
      opts.tls,
      opts.token ?? (process.env['MUSTER_TOKEN'] || undefined),
      this.readYourWrites,
    );
  }

  // ---- namespaces ---------------------------------------------------------------------------

  async listNamespaces(opts?: CallOptions): Promise<Namespace[]> {
    return (await this.get<{ namespaces: Namespace[] }>('/v1/namespaces', undefined, opts)).namespaces;
  }

  async getNamespace(name: string, opts?: CallOptions): Promise<Namespace & { serviceCount: number }> {
    return this.get(`/v1/namespaces/${seg(name)}`, undefined, opts);
  }

  async createNamespace(input: NamespaceInput, opts?: CallOptions): Promise<Namespace> {
    return this.send('POST', '/v1/namespaces', input, opts);
  }

  /** Refused (FAILED_PRECONDITION) while the namespace has services. */
  async deleteNamespace(name: string, opts?: CallOptions): Promise<void> {
    await this.send('DELETE', `/v1/namespaces/${seg(name)}`, undefined, opts);
  }

  // ---- services -----------------------------------------------------------------------------

  async listServices(namespace: string, opts: ServiceListOptions = {}): Promise<ServiceList> {
    const q = setDefined(new URLSearchParams(), { offset: opts.offset, limit: opts.limit, name: opts.prefix });
    return this.get(`/v1/namespaces/${seg(namespace)}/services`, q, opts);
  }

  async getService(namespace: string, service: string, opts?: CallOptions): Promise<Service> {
    return this.get(servicePath(namespace, service), undefined, opts);
  }

  async createService(namespace: string, input: ServiceInput, opts?: CallOptions): Promise<Service> {
    return this.send('POST', `/v1/namespaces/${seg(namespace)}/services`, input, opts);
  }

  async patchService(namespace: string, service: string, patch: ServicePatch, opts?: CallOptions): Promise<Service> {
    return this.send('PATCH', servicePath(namespace, service), patch, opts);
  }

  /** Refused (FAILED_PRECONDITION) while the service has instances, unless `force`. */
  async deleteService(namespace: string, service: string, opts: CallOptions & { force?: boolean } = {}): Promise<void> {
    const q = setDefined(new URLSearchParams(), { force: opts.force });
    await this.http.call({ method: 'DELETE', path: servicePath(namespace, service), query: q }, callOpts(opts));
  }

  // ---- instances ----------------------------------------------------------------------------

  /**
   * Registers an instance; `created` tells a new one from a re-registration. Re-registering a
   * live instance needs its heartbeatToken as `token`.
   */
  async register(
    namespace: string,
    service: string,
    req: RegisterRequest,
    opts: CallOptions & { token?: string } = {},
  ): Promise<RegisterResponse> {
    const a = await this.http.call<RegisterResponse>(
      { method: 'POST', path: `${servicePath(namespace, service)}/instances`, body: req, ...token(opts.token) },
      callOpts(opts),
    );
    return a.body!;
  }

  async getInstance(id: string, opts?: CallOptions): Promise<Instance> {
    return this.get(`/v1/instances/${seg(id)}`, undefined, opts);
  }

  /**
   * With the instance's heartbeatToken, or without one (undefined) as the client's access token
   * with write on its service; isolation needs the access token when the registry's auth is on.
   */
  async patchInstance(
    id: string,
    patch: InstancePatch,
    heartbeatToken: string | undefined,
    opts?: CallOptions,
  ): Promise<Instance> {
    const a = await this.http.call<Instance>(
      { method: 'PATCH', path: `/v1/instances/${seg(id)}`, body: patch, token: heartbeatToken },
      callOpts(opts),
    );
    return a.body!;
  }

  /** With the instance's heartbeatToken, or without one (undefined) as the client's access token with write on its service. */
  async deregister(id: string, heartbeatToken: string | undefined, opts?: CallOptions): Promise<void> {
    await this.http.call({ method: 'DELETE', path: `/v1/instances/${seg(id)}`, token: heartbeatToken }, callOpts(opts));
  }

  /** NOT_FOUND means the registry no longer knows the instance: register it again. */
  async heartbeat(id: string, heartbeatToken: string, opts?: CallOptions): Promise<void> {
    await this.http.call(
      { method: 'PUT', path: `/v1/instances/${seg(id)}/heartbeat`, token: heartbeatToken, readYourWrites: false },
      callOpts(opts),
    );
  }

  /** Many heartbeats in one request; each item succeeds or fails on its own (see `results`). */
  async heartbeats(items: HeartbeatItem[], opts?: CallOptions): Promise<HeartbeatBatchResponse> {
    const a = await this.http.call<HeartbeatBatchResponse>(
      { method: 'POST', path: '/v1/heartbeats', body: { heartbeats: items }, readYourWrites: false },
      callOpts(opts),
    );
    return a.body!;
  }

  // ---- discovery ----------------------------------------------------------------------------

  /**
   * The service's instances (healthy and not isolated unless the filter says otherwise). With
   * `revision` an unchanged service answers NotModified, after up to `waitMs` of long polling.
   */
  async discover(namespace: string, service: string, opts: DiscoverOptions = {}): Promise<DiscoverResult> {
    const q = filterParams(opts);
    setDefined(q, {
      revision: opts.revision,
      wait:
        opts.waitMs !== undefined
          ? `${Math.min(Math.round(opts.waitMs), LIMITS.longPollMaxSeconds * 1000)}ms`
          : undefined,
    });
    const timeoutMs = (opts.timeoutMs ?? this.timeoutMs) + (opts.revision !== undefined ? (opts.waitMs ?? 0) : 0);
    const a = await this.http.call<DiscoverResponse>(
      { method: 'GET', path: `${servicePath(namespace, service)}/instances`, query: q },
      { ...callOpts(opts), timeoutMs },
      [304],
    );
    if (a.status === 304) {
      const stale = a.headers.get('x-muster-stale');
      const revision = revisionOf(a.headers) ?? opts.revision!;
      return stale === null ? { notModified: true, revision } : { notModified: true, revision, staleReason: stale };
    }
    return { ...a.body!, notModified: false };
  }

  /**
   * Opens a Server-Sent Events stream of the service: `onSnapshot` gets the full discovery answer
   * now and after every change. Resolves once the stream is open (an unknown service rejects
   * with NOT_FOUND, unless `allowMissing`); the returned Watch says when and why it ended. It
   * does not reconnect.
   */
  async watch(namespace: string, service: string, filter: WatchOptions, onSnapshot: SnapshotHandler): Promise<Watch> {
    const q = filterParams(filter, new URLSearchParams({ namespace, service }));
    if (filter.allowMissing) q.set('allowMissing', 'true');
    const streamOpts: { accept: string; signal?: AbortSignal; timeoutMs?: number } = { accept: 'text/event-stream' };
    if (filter.signal) streamOpts.signal = filter.signal;
    if (filter.timeoutMs !== undefined) streamOpts.timeoutMs = filter.timeoutMs;
    const { response, abort } = await this.http.stream({ method: 'GET', path: '/v1/watch', query: q }, streamOpts);
    // undici types its body as a stream of any; a fetch body is bytes.
    return new WatchStream(response.body! as ReadableStream<Uint8Array>, abort, onSnapshot, filter.signal);
  }

  // ---- events -------------------------------------------------------------------------------

  /** Recent events, newest first unless `order: 'asc'`. */
  async events(query: EventQuery = {}): Promise<RegistryEvent[]> {
    const q = setDefined(new URLSearchParams(), {
      namespace: query.namespace,
      service: query.service,
      instance: query.instance,
      type: Array.isArray(query.type) ? query.type.join(',') : query.type,
      since: query.since instanceof Date ? query.since.toISOString() : query.since,
      after: query.after,
      limit: query.limit,
      order: query.order,
    });
    return (await this.get<EventsResponse>('/v1/events', q, query)).events;
  }

  // ---- cluster ------------------------------------------------------------------------------

  /** The nodes of the cluster and which one holds the sweep lease; a single node lists itself. */
  async cluster(opts?: CallOptions): Promise<ClusterStatus> {
    return (
      await this.http.call<ClusterStatus>({ method: 'GET', path: '/v1/cluster', readYourWrites: false }, callOpts(opts))
    ).body!;
  }

  // ---- access tokens (admin) ----------------------------------------------------------------

  /** A new access token; the answer's `secret` is shown only this once. */
  async createToken(input: CreateTokenRequest, opts?: CallOptions): Promise<CreateTokenResponse> {
    return this.send('POST', '/v1/tokens', input, opts);
  }

  async listTokens(opts: CallOptions & { revoked?: boolean } = {}): Promise<AccessToken[]> {
    const q = opts.revoked ? new URLSearchParams({ revoked: 'true' }) : undefined;
    return (await this.get<{ tokens: AccessToken[] }>('/v1/tokens', q, opts)).tokens;
  }

  /** Revokes a token by id (or by its name); every node refuses it from then on. */
  async revokeToken(ref: string, opts?: CallOptions): Promise<AccessToken> {
    return this.send('DELETE', `/v1/tokens/${seg(ref)}`, undefined, opts);
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** GET /readyz: whether the server is ready and the state of each check; answered when not ready too. */
  async readiness(opts?: CallOptions): Promise<Readiness> {
    return (
      await this.http.call<Readiness>({ method: 'GET', path: '/readyz', readYourWrites: false }, callOpts(opts), [503])
    ).body!;
  }

  /** GET /v1/tokens/self: whether auth is on, this client's token, and its rights over a scope. */
  async self(scope: { namespace?: string; service?: string } = {}, opts?: CallOptions): Promise<TokenSelf> {
    const q = new URLSearchParams();
    if (scope.namespace !== undefined) q.set('namespace', scope.namespace);
    if (scope.service !== undefined) q.set('service', scope.service);
    return (
      await this.http.call<TokenSelf>(
        { method: 'GET', path: '/v1/tokens/self', query: q, readYourWrites: false },
        callOpts(opts),
      )
    ).body!;
  }

  /** GET /v1/backup: a consistent copy of a SQLite store, as a stream of the file's bytes (admin). */
  async backup(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ReadableStream<Uint8Array>> {
    const { response } = await this.http.stream(
      { method: 'GET', path: '/v1/backup' },
      { ...opts, accept: 'application/vnd.sqlite3' },
    );
    return response.body as ReadableStream<Uint8Array>;
  }

  private async get<T>(path: string, query: URLSearchParams | undefined, opts: CallOptions = {}): Promise<T> {
    const a = await this.http.call<T>(query ? { method: 'GET', path, query } : { method: 'GET', path }, callOpts(opts));
    return a.body!;
  }

  private async send<T>(
    method: 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body: unknown,
    opts: CallOptions = {},
  ): Promise<T> {
    const a = await this.http.call<T>(body === undefined ? { method, path } : { method, path, body }, callOpts(opts));
    return a.body!;
  }
}

const servicePath = (namespace: string, service: string) => `/v1/namespaces/${seg(namespace)}/services/${seg(service)}`;

const token = (t: string | undefined): { token?: string } => (t === undefined ? {} : { token: t });

/** Only the call options: option objects also carry filters that are not the transport's business. */
function callOpts(o: CallOptions | undefined): CallOptions {
  const out: CallOptions = {};
  if (o?.signal) out.signal = o.signal;
  if (o?.timeoutMs !== undefined) out.timeoutMs = o.timeoutMs;
  return out;
}

/** The ETag is the revision: `"12"`. */
function revisionOf(h: Headers): number | undefined {
  const m = /(\d+)/.exec(h.get('etag') ?? '');
  return m ? Number(m[1]) : undefined;
}
