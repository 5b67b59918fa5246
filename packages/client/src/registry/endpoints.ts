import { MusterError } from '@muster/api';
import { backoffMs } from '../sdk/backoff.js';
import { isTransient, type RegistryApi } from './registry-api.js';
import { InvalidOptionError, NoServerReachableError } from '../errors.js';

interface Endpoint {
  api: RegistryApi;
  failures: number;
  /** Until when this server is skipped (epoch ms); 0 = usable. */
  downUntil: number;
}

export interface EndpointsOptions {
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Told when the preferred server changes, for the client's `failover` event. */
  onSwitch?: (from: string, to: string, reason: MusterError) => void;
}

/**
 * The registry servers the client may use, in order of preference. A call goes to the first
 * one not backing off; a transient failure (unreachable, no answer) backs that server off and
 * the call moves to the next. A server whose backoff ran out is preferred again, so traffic
 * returns to the first address once it is back.
 */
export class Endpoints {
  private readonly list: Endpoint[];
  private lastUsed: Endpoint | undefined;

  constructor(
    apis: RegistryApi[],
    private readonly opts: EndpointsOptions,
  ) {
    if (apis.length === 0) throw new InvalidOptionError('servers', 'at least one registry server is needed');
    this.list = apis.map((api) => ({ api, failures: 0, downUntil: 0 }));
  }

  /** The server to use now: the first usable one, else the one that comes back soonest. */
  current(now = Date.now()): RegistryApi {
    let best = this.list[0]!;
    for (const e of this.list) {
      if (e.downUntil <= now) {
        best = e;
        break;
      }
      if (e.downUntil < best.downUntil) best = e;
    }
    return best.api;
  }

  /** True when `api` is the server this client would pick first right now. */
  isPreferred(api: RegistryApi): boolean {
    return this.current() === api;
  }

  succeeded(api: RegistryApi): void {
    const e = this.find(api);
    e.failures = 0;
    e.downUntil = 0;
    this.lastUsed = e;
  }

  failed(api: RegistryApi, err: MusterError): void {
    const e = this.find(api);
    e.failures++;
    e.downUntil = Date.now() + backoffMs(e.failures, this.opts.backoffBaseMs, this.opts.backoffMaxMs);
    const next = this.current();
    if (next !== api && this.lastUsed === e) this.opts.onSwitch?.(api.address, next.address, err);
    if (next !== api) this.lastUsed = this.find(next);
  }

  /**
   * Runs `fn` against the current server; on a transient failure tries the next ones, each at
   * most once. Other errors (invalid input, not found, denied) are the answer and are thrown.
   */
  async call<T>(fn: (api: RegistryApi) => Promise<T>): Promise<T> {
    let last: MusterError | undefined;
    const tried = new Set<RegistryApi>();
    for (let i = 0; i < this.list.length; i++) {
      const api = this.current();
      if (tried.has(api)) break;
      tried.add(api);
      try {
        const out = await fn(api);
        this.succeeded(api);
        return out;
      } catch (err) {
        if (!(err instanceof MusterError) || !isTransient(err.code)) {
          if (err instanceof MusterError) this.succeeded(api); // it answered: it is up
          throw err;
        }
        last = err;
        this.failed(api, err);
      }
    }
    throw last ?? new NoServerReachableError();
  }

  close(): void {
    for (const e of this.list) e.api.close();
  }

  private find(api: RegistryApi): Endpoint {
    return this.list.find((e) => e.api === api)!;
  }
}
