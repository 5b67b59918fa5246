import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type {
  DiscoveredInstance,
  DiscoverResponse,
  HeartbeatBatchResponse,
  HeartbeatItem,
  Instance,
  RegisterRequest,
  RegisterResponse,
} from '@muster/api';
import { MIN_REVISION_METADATA, MusterError, PROTO_ROOT, REGISTRY_PROTO } from '@muster/api';
import type { DiscoverResult } from '../http-client.js';
import type { ReadYourWrites } from '../read-your-writes.js';
import type { TlsOptions } from '../tls.js';
import type { SnapshotHandler, Watch, WatchEnd } from '../watch.js';
import { fromGrpcError } from './grpc-errors.js';
import type { RegistryApi } from './registry-api.js';
import { RequestTimeoutError, SnapshotHandlerError, StreamEndedError } from '../errors.js';

type Unary = (
  req: unknown,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: any) => void,
) => grpc.ClientUnaryCall;
interface RegistryStub extends grpc.Client {
  Register: Unary;
  Deregister: Unary;
  Heartbeat: Unary;
  Discover: Unary;
  HeartbeatStream(
    meta?: grpc.Metadata,
    opts?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<unknown, WireHeartbeatResults>;
  Watch(req: unknown, meta?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<WireDiscoverResponse>;
}
interface WireHeartbeatResults {
  results: Array<{ id: string; ok: boolean; error?: { code: string; message: string; field: string } | null }>;
}
type WireInstance = DiscoveredInstance & {
  namespace: string;
  service: string;
  lastHeartbeat: string;
  createdAt: string;
  updatedAt: string;
};
interface WireDiscoverResponse {
  namespace: string;
  service: string;
  revision: number;
  instances: WireInstance[];
  unchanged: boolean;
  stale?: boolean;
  staleReason?: string;
}

let ctor: grpc.ServiceClientConstructor | undefined;
/** The proto is parsed once per process, on first use, from the copy @muster/api ships. */
function registryClientCtor(): grpc.ServiceClientConstructor {
  if (!ctor) {
    const def = protoLoader.loadSync(REGISTRY_PROTO, {
      includeDirs: [PROTO_ROOT],
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
      arrays: true,
      objects: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      muster: { v1: { Registry: grpc.ServiceClientConstructor } };
    };
    ctor = pkg.muster.v1.Registry;
  }
  return ctor;
}

const ALL = { status: 'all', isolated: 'all' };

/**
 * RegistryApi over gRPC: one channel per server, and one HeartbeatStream shared by every
 * instance the process keeps alive (batches answered in order, so a FIFO matches answers).
 */
export class GrpcRegistry implements RegistryApi {
  private readonly stub: RegistryStub;
  private hbStream: grpc.ClientDuplexStream<unknown, WireHeartbeatResults> | undefined;
  private hbPending: Array<{
    resolve: (r: HeartbeatBatchResponse['results']) => void;
    reject: (e: MusterError) => void;
    timer: NodeJS.Timeout;
  }> = [];

  /**
   * `address` is host:port, grpc://host:port (plain text) or grpcs://host:port (TLS); host:port
   * is TLS too when `tls` is given. `token`: an access token, sent as `authorization` metadata
   * with every call. `session`: the revision of the client's own writes, shared by all its
   * servers: Register and Deregister raise it, and every call but heartbeats carries it.
   */
  constructor(
    readonly address: string,
    private readonly timeoutMs: number,
    tls: TlsOptions | undefined,
    private readonly token: string | undefined,
    private readonly session: ReadYourWrites,
  ) {
    const target = address.replace(/^grpcs?:\/\//, '');
    const secure = address.startsWith('grpcs://') || tls !== undefined;
    const credentials = secure
      ? grpc.credentials.createSsl(pem(tls?.ca), pem(tls?.key), pem(tls?.cert))
      : grpc.credentials.createInsecure();
    this.stub = new (registryClientCtor())(target, credentials, {
      // grpc-js waits up to 2 minutes between reconnects by default; a registry that comes back
      // must be found again within a heartbeat interval.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2000,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
    }) as unknown as RegistryStub;
  }

  private metadata(revision?: number): grpc.Metadata {
    const m = new grpc.Metadata();
    if (this.token !== undefined) m.set('authorization', `Bearer ${this.token}`);
    if (revision !== undefined) m.set(MIN_REVISION_METADATA, String(revision));
    return m;
  }

  private unary<T>(
    method: 'Register' | 'Deregister' | 'Discover',
    req: unknown,
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    return this.session.carry(
      (revision) =>
        new Promise<T>((resolve, reject) => {
          this.stub[method](req, this.metadata(revision), { deadline: Date.now() + timeoutMs }, (err, res) => {
            if (err) reject(fromGrpcError(err, `${method} ${this.address}`));
            else resolve(res as T);
          });
        }),
    );
  }

  async register(namespace: string, service: string, req: RegisterRequest, token?: string): Promise<RegisterResponse> {
    const { revision, ...res } = await this.unary<RegisterResponse & { revision: number }>('Register', {
      ...req,
      namespace,
      service,
      heartbeatToken: token ?? '',
    });
    this.session.wrote(revision);
    return {
      ...res,
      instance: {
        ...res.instance,
        location: location(res.instance.location),
        verification: verification(res.instance.verification),
      },
    };
  }

  async deregister(id: string, token: string): Promise<void> {
    const { revision } = await this.unary<{ revision: number }>('Deregister', { id, heartbeatToken: token });
    this.session.wrote(revision);
  }

  heartbeats(items: HeartbeatItem[]): Promise<HeartbeatBatchResponse['results']> {
    return new Promise((resolve, reject) => {
      let stream: grpc.ClientDuplexStream<unknown, WireHeartbeatResults>;
      try {
        stream = this.heartbeatStream();
      } catch (err) {
        reject(fromGrpcError(err, `HeartbeatStream ${this.address}`));
        return;
      }
      // A batch not answered in time means the stream is wedged: start over on a new one.
      const timer = setTimeout(
        () => this.failHeartbeats(new RequestTimeoutError(`HeartbeatStream ${this.address}: no answer in time`), true),
        this.timeoutMs,
      );
      this.hbPending.push({ resolve, reject, timer });
      stream.write({ heartbeats: items.map((i) => ({ id: i.id, heartbeatToken: i.token })) });
    });
  }

  private heartbeatStream(): grpc.ClientDuplexStream<unknown, WireHeartbeatResults> {
    if (this.hbStream) return this.hbStream;
    const s = this.stub.HeartbeatStream(this.metadata());
    s.on('data', (msg: WireHeartbeatResults) => {
      const p = this.hbPending.shift();
      if (!p) return;
      clearTimeout(p.timer);
      p.resolve(
        msg.results.map((r) =>
          r.ok
            ? { id: r.id, ok: true as const }
            : {
                id: r.id,
                ok: false as const,
                error: {
                  code: r.error?.code ?? 'INTERNAL',
                  message: r.error?.message ?? '',
                  ...(r.error?.field ? { field: r.error.field } : {}),
                },
              },
        ),
      );
    });
    const fail = (err: unknown) => {
      if (this.hbStream === s) this.hbStream = undefined;
      this.failHeartbeats(fromGrpcError(err, `HeartbeatStream ${this.address}`), false);
    };
    s.on('error', fail);
    s.on('end', () => fail(new StreamEndedError('the server ended the heartbeat stream')));
    this.hbStream = s;
    return s;
  }

  private failHeartbeats(err: MusterError, cancel: boolean): void {
    const pending = this.hbPending;
    this.hbPending = [];
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    if (cancel && this.hbStream) {
      const s = this.hbStream;
      this.hbStream = undefined;
      s.cancel();
    }
  }

  async discover(
    namespace: string,
    service: string,
    opts: { revision?: number; waitMs?: number } = {},
  ): Promise<DiscoverResult> {
    const req: Record<string, unknown> = { namespace, service, filter: ALL };
    if (opts.revision !== undefined) req['revision'] = opts.revision;
    if (opts.waitMs !== undefined) req['waitMs'] = Math.round(opts.waitMs);
    const res = await this.unary<WireDiscoverResponse>(
      'Discover',
      req,
      this.timeoutMs + (opts.revision !== undefined ? (opts.waitMs ?? 0) : 0),
    );
    if (res.unchanged)
      return res.stale
        ? { notModified: true, revision: res.revision, staleReason: res.staleReason ?? '' }
        : { notModified: true, revision: res.revision };
    return { ...answer(res), notModified: false };
  }

  watch(namespace: string, service: string, revision: number | undefined, onSnapshot: SnapshotHandler): Watch {
    const req: Record<string, unknown> = { namespace, service, filter: ALL, allowMissing: true };
    if (revision !== undefined) req['revision'] = revision;
    const call = this.stub.Watch(req, this.metadata(this.session.revision));
    let last: number | undefined;
    let closed = false;
    const ended = new Promise<WatchEnd>((resolve) => {
      call.on('data', (msg: WireDiscoverResponse) => {
        last = msg.revision;
        try {
          onSnapshot(answer(msg));
        } catch (err) {
          resolve({ reason: 'error', error: new SnapshotHandlerError(err) });
          call.cancel();
        }
      });
      call.on('error', (err: grpc.ServiceError) => {
        if (closed) return resolve({ reason: 'closed' });
        const e = fromGrpcError(err, `Watch ${this.address}`);
        resolve(
          e.code === 'UNAVAILABLE' || e.code === 'DEADLINE_EXCEEDED'
            ? { reason: 'disconnected', error: e }
            : { reason: 'error', error: e },
        );
      });
      call.on('end', () =>
        resolve(
          closed
            ? { reason: 'closed' }
            : {
                reason: 'disconnected',
                error: new StreamEndedError(`Watch ${this.address}: the server ended the stream`),
              },
        ),
      );
    });
    return {
      ended,
      close: () => {
        closed = true;
        call.cancel();
      },
      get revision() {
        return last;
      },
    };
  }

  close(): void {
    this.failHeartbeats(new StreamEndedError('the client was closed'), true);
    this.stub.close();
  }
}

/** grpc-js takes PEM as Buffers; null: the system's CAs, or no client certificate. */
function pem(v: string | Buffer | undefined): Buffer | null {
  return v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v);
}

/** The wire answer as the HTTP API's shape: discovery instances carry no namespace or timestamps. */
function answer(res: WireDiscoverResponse): DiscoverResponse {
  return {
    namespace: res.namespace,
    service: res.service,
    revision: res.revision,
    ...(res.stale ? { stale: true, staleReason: res.staleReason ?? '' } : {}),
    instances: res.instances.map((i) => ({
      id: i.id,
      host: i.host,
      port: i.port,
      protocol: i.protocol,
      version: i.version,
      weight: i.weight,
      priority: i.priority,
      metadata: i.metadata,
      location: location(i.location),
      healthCheck: { type: 'heartbeat', ttl: i.healthCheck?.ttl ?? 0 },
      healthy: i.healthy,
      isolate: i.isolate,
      lastHeartbeatAgeMs: i.lastHeartbeatAgeMs,
      revision: i.revision,
    })),
  };
}

/** As HTTP answers it: a reason and time only when there is one (a server before verification sends none: verified). */
function verification(
  v: { state?: string; reason?: string; at?: string } | null | undefined,
): Instance['verification'] {
  const out: Instance['verification'] = {
    state: v?.state === 'pending' || v?.state === 'failed' ? v.state : 'verified',
  };
  if (v?.reason) out.reason = v.reason;
  if (v?.at) out.at = v.at;
  return out;
}

/** Proto strings cannot be absent; an empty one is a location part the instance did not give. */
function location(
  l: { region?: string; zone?: string; campus?: string } | null | undefined,
): DiscoveredInstance['location'] {
  const out: DiscoveredInstance['location'] = {};
  if (l?.region) out.region = l.region;
  if (l?.zone) out.zone = l.zone;
  if (l?.campus) out.campus = l.campus;
  return out;
}
