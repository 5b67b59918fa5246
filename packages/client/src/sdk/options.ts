import type { Location } from '@muster/api';
import type { LoadBalancer } from '../balance/types.js';
import { checkTlsOptions, type TlsOptions } from '../tls.js';
import { resolveOutlierOptions, type OutlierOptions, type ResolvedOutlierOptions } from './outlier-detector.js';
import { InvalidOptionError } from '../errors.js';

/** Per-service consumer settings; each overrides the client-wide one of the same name. */
export interface ServiceOptions {
  /**
   * When fewer than this share (0..1) of a service's instances is healthy, answers include the
   * unhealthy ones too, so the few healthy ones are not overloaded. Default 0: off.
   */
  protectionThreshold?: number;
  /** How `pick` chooses. Default: weighted random. */
  balancer?: LoadBalancer;
  /** Outlier ejection of this service's instances; `false` turns it off. */
  outlierDetection?: OutlierOptions | false;
}

export interface MusterClientOptions {
  /**
   * An access token (`mst_...`) sent with every call: needed where the registry requires one of
   * clients (auth.clients required), and it may act on any instance of the services it has write
   * on. Default env MUSTER_TOKEN.
   */
  token?: string;
  /**
   * Registry servers in order of preference. gRPC: `host:port` (default `127.0.0.1:8091`), or
   * `grpcs://host:port` for TLS; HTTP: `http://host:port` (default `http://127.0.0.1:8090`) or
   * `https://`. Default: env MUSTER_SERVERS (comma separated), else the local default of the
   * transport.
   */
  servers?: string[];
  /**
   * TLS settings (PEM contents): the CA that signed the registry's certificate, and a client
   * certificate and key for a registry that requires one. Given, gRPC connects with TLS to
   * every server, and HTTP servers must be https:// URLs. Default: none (TLS only for
   * grpcs:// and https:// servers, trusting the system's CAs).
   */
  tls?: TlsOptions;
  /** `grpc` (default) or `http`. Both offer the same API and errors. */
  transport?: 'grpc' | 'http';
  /** Namespace of services named without one. Default `default`. */
  namespace?: string;
  /** Per-call timeout. Default 5000 ms. */
  timeoutMs?: number;
  /** First retry delay after a failure; doubles up to `backoffMaxMs`. Default 200 ms. */
  backoffBaseMs?: number;
  /** Longest retry delay. Default 10000 ms. */
  backoffMaxMs?: number;
  /**
   * A directory for the last good answer of each service. When no registry is reachable, the
   * SDK answers from it, marked stale with its age. Default: none.
   */
  cacheDir?: string;
  /**
   * An instance whose last heartbeat is older than this is never served as fresh while the SDK
   * cannot reach a registry (from the disk cache or a stale view). Default 60000 ms.
   */
  maxHeartbeatAgeMs?: number;
  /** While no registry is reachable, still answer with instances older than `maxHeartbeatAgeMs`, marked stale. Default true. */
  serveStale?: boolean;
  /**
   * An update that empties a service that had instances is held back (the old list is kept,
   * marked stale) until the registry says it again this long after. Default 3000 ms.
   */
  emptyConfirmMs?: number;
  /** Poll interval when neither a watch nor a long-poll works. Default 5000 ms. */
  pollIntervalMs?: number;
  /** After falling back from watch to long-poll or polling, try watching again this often. Default 30000 ms. */
  watchRetryMs?: number;
  /** How long a consumer stays on a server that is not its first choice before it tries the first again. Default 30000 ms. */
  preferPrimaryAfterMs?: number;
  /** Where this process runs: the locality balancer prefers instances of the same zone, then region. */
  location?: Location;
  /** Default `protectionThreshold` and `balancer` of every service. */
  protectionThreshold?: number;
  balancer?: LoadBalancer;
  /**
   * Outlier ejection (see `report` and `call`): an instance whose calls fail in a row is left out
   * of `pick` for a backoff that grows, then tried again. On by default; `false` turns it off.
   */
  outlierDetection?: OutlierOptions | false;
  /** Settings per service name (`name` or `namespace/name`). */
  services?: Record<string, ServiceOptions>;
}

export type ResolvedOptions = Required<
  Omit<MusterClientOptions, 'cacheDir' | 'location' | 'balancer' | 'services' | 'tls' | 'token' | 'outlierDetection'>
> & {
  outlierDetection: ResolvedOutlierOptions | false;
  token: string | undefined;
  cacheDir: string | undefined;
  tls: TlsOptions | undefined;
  location: Location;
  balancer: LoadBalancer | undefined;
  services: Record<string, ServiceOptions>;
};

const DEFAULT_SERVER = { grpc: '127.0.0.1:8091', http: 'http://127.0.0.1:8090' } as const;

export function resolveOptions(o: MusterClientOptions): ResolvedOptions {
  const transport = o.transport ?? 'grpc';
  if (transport !== 'grpc' && transport !== 'http')
    throw new InvalidOptionError('transport', 'transport must be "grpc" or "http"');
  const env = process.env['MUSTER_SERVERS']
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const servers = o.servers ?? (env && env.length > 0 ? env : [DEFAULT_SERVER[transport]]);
  if (servers.length === 0) throw new InvalidOptionError('servers', 'servers must name at least one registry');
  const r: ResolvedOptions = {
    servers,
    transport,
    token: o.token ?? (process.env['MUSTER_TOKEN'] || undefined),
    namespace: o.namespace ?? 'default',
    timeoutMs: o.timeoutMs ?? 5000,
    backoffBaseMs: o.backoffBaseMs ?? 200,
    backoffMaxMs: o.backoffMaxMs ?? 10_000,
    cacheDir: o.cacheDir,
    maxHeartbeatAgeMs: o.maxHeartbeatAgeMs ?? 60_000,
    serveStale: o.serveStale ?? true,
    emptyConfirmMs: o.emptyConfirmMs ?? 3000,
    pollIntervalMs: o.pollIntervalMs ?? 5000,
    watchRetryMs: o.watchRetryMs ?? 30_000,
    preferPrimaryAfterMs: o.preferPrimaryAfterMs ?? 30_000,
    location: o.location ?? {},
    protectionThreshold: o.protectionThreshold ?? 0,
    balancer: o.balancer,
    services: o.services ?? {},
    tls: o.tls,
    outlierDetection: o.outlierDetection === false ? false : resolveOutlierOptions(o.outlierDetection),
  };
  checkTlsOptions(r.tls);
  for (const k of [
    'timeoutMs',
    'backoffBaseMs',
    'backoffMaxMs',
    'maxHeartbeatAgeMs',
    'emptyConfirmMs',
    'pollIntervalMs',
    'watchRetryMs',
    'preferPrimaryAfterMs',
  ] as const) {
    if (!Number.isFinite(r[k]) || r[k] < 0)
      throw new InvalidOptionError(k, `${k} must be a number of milliseconds >= 0`);
  }
  checkThreshold('protectionThreshold', r.protectionThreshold);
  for (const [name, s] of Object.entries(r.services)) {
    if (s.protectionThreshold !== undefined)
      checkThreshold(`services.${name}.protectionThreshold`, s.protectionThreshold);
    if (s.outlierDetection) resolveOutlierOptions(s.outlierDetection, `services.${name}.outlierDetection`);
  }
  return r;
}

/** A service's outlier settings: its own over the client's, `false` in either turning it off. */
export function outlierOptionsOf(r: ResolvedOptions, s: ServiceOptions): ResolvedOutlierOptions | false {
  if (s.outlierDetection === false) return false;
  if (s.outlierDetection === undefined) return r.outlierDetection;
  return resolveOutlierOptions({ ...(r.outlierDetection || {}), ...s.outlierDetection });
}

function checkThreshold(field: string, v: number): void {
  if (!(v >= 0 && v <= 1)) throw new InvalidOptionError(field, `${field} must be a share in 0..1`);
}
