import type {
  DiscoverResponse,
  HeartbeatBatchResponse,
  HeartbeatItem,
  RegisterRequest,
  RegisterResponse,
} from '@muster/api';
import type { DiscoverResult } from '../http-client.js';
import type { SnapshotHandler, Watch } from '../watch.js';

/**
 * What the SDK needs from one registry server, whatever the protocol. The gRPC and HTTP
 * implementations answer the same shapes and throw the same MusterErrors, so everything above
 * (failover, heartbeats, caches) is written once.
 */
export interface RegistryApi {
  /** How the caller named this server: `127.0.0.1:8091` or `http://127.0.0.1:8090`. */
  readonly address: string;
  register(namespace: string, service: string, req: RegisterRequest, token?: string): Promise<RegisterResponse>;
  deregister(id: string, token: string): Promise<void>;
  /** One result per item, in order; a failed item is not a rejection, a failed call is. */
  heartbeats(items: HeartbeatItem[]): Promise<HeartbeatBatchResponse['results']>;
  /** Every instance of the service (any health, any isolation): the SDK filters locally. */
  discover(namespace: string, service: string, opts?: { revision?: number; waitMs?: number }): Promise<DiscoverResult>;
  /** Snapshots of every instance, now (unless `revision` is current) and after each change; a service that does not exist is watched as empty (revision 0) until it does. */
  watch(namespace: string, service: string, revision: number | undefined, onSnapshot: SnapshotHandler): Watch;
  close(): void;
}

export type { DiscoverResponse, DiscoverResult };

/** Errors worth trying another server for: the server could not be reached or did not answer. */
export function isTransient(code: string): boolean {
  return code === 'UNAVAILABLE' || code === 'DEADLINE_EXCEEDED';
}
