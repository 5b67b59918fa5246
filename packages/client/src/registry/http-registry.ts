import { MusterError } from '@muster/api';
import { MusterHttpClient } from '../http-client.js';
import type { ReadYourWrites } from '../read-your-writes.js';
import type { TlsOptions } from '../tls.js';
import type { SnapshotHandler, Watch, WatchEnd } from '../watch.js';
import type { RegistryApi } from './registry-api.js';
import { ServerUnreachableError } from '../errors.js';

const ALL = { status: 'all', isolated: 'all' } as const;

/** RegistryApi over the HTTP API v1: batched heartbeats, SSE watch, long-poll discovery. */
export class HttpRegistry implements RegistryApi {
  private readonly http: MusterHttpClient;

  /** `session`: the revision of the client's own writes, shared by all its servers. */
  constructor(
    readonly address: string,
    timeoutMs: number,
    tls: TlsOptions | undefined,
    token: string | undefined,
    session: ReadYourWrites,
  ) {
    this.http = new MusterHttpClient({
      server: address,
      timeoutMs,
      readYourWrites: session,
      ...(tls === undefined ? {} : { tls }),
      ...(token === undefined ? {} : { token }),
    });
  }

  register(namespace: string, service: string, req: Parameters<RegistryApi['register']>[2], token?: string) {
    return this.http.register(namespace, service, req, token === undefined ? {} : { token });
  }

  deregister(id: string, token: string) {
    return this.http.deregister(id, token);
  }

  async heartbeats(items: Parameters<RegistryApi['heartbeats']>[0]) {
    return (await this.http.heartbeats(items)).results;
  }

  discover(namespace: string, service: string, opts: { revision?: number; waitMs?: number } = {}) {
    return this.http.discover(namespace, service, { ...ALL, ...opts });
  }

  watch(namespace: string, service: string, _revision: number | undefined, onSnapshot: SnapshotHandler): Watch {
    const ctl = new AbortController();
    let inner: Watch | undefined;
    const ended = (async (): Promise<WatchEnd> => {
      try {
        inner = await this.http.watch(
          namespace,
          service,
          { ...ALL, allowMissing: true, signal: ctl.signal },
          onSnapshot,
        );
      } catch (err) {
        if (ctl.signal.aborted) return { reason: 'closed' };
        const e = err instanceof MusterError ? err : new ServerUnreachableError(String(err), err);
        return e.code === 'UNAVAILABLE' || e.code === 'DEADLINE_EXCEEDED'
          ? { reason: 'disconnected', error: e }
          : { reason: 'error', error: e };
      }
      return inner.ended;
    })();
    return {
      ended,
      close: () => ctl.abort(),
      get revision() {
        return inner?.revision;
      },
    };
  }

  close(): void {}
}
