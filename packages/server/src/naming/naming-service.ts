import type {
  DiscoverFilter,
  DiscoverResponse,
  HeartbeatBatchResponse,
  HeartbeatItem,
  Instance,
  Namespace,
  RegisterResponse,
  RegistryEvent,
  Service,
} from '@muster/api';
import type { RequestContext } from '../batch/request-context.js';
import type { WriteBatcher } from '../batch/write-batcher.js';
import type { Clock } from '../clock.js';
import { EventLog } from '../events/event-log.js';
import type { RegistryIndex, ServiceEntry } from '../index/registry-index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { EventFilter, Store } from '../store/store.js';
import type { GuardOptions } from '../verify/address-guard.js';
import type { CheckOutcome } from '../verify/verifier.js';
import type { InstanceCredentials, ServiceWriter } from './credentials.js';
import { Discovery, missingAnswer } from './discovery.js';
import { HealthTransitions } from './health-transitions.js';
import { Heartbeats } from './heartbeats.js';
import { Instances } from './instances.js';
import { NamingContext } from './naming-context.js';
import { NO_HOOKS, type NamingHooks } from './naming-hooks.js';
import { Namespaces } from './namespaces.js';
import { Services, type ServiceQuery } from './services.js';
import { Verification, type CheckedTarget } from './verification.js';

export type { InstanceCredentials, ServiceWriter } from './credentials.js';
export type { HeartbeatSink, IndexMiss, NamingHooks, VerificationSink } from './naming-hooks.js';
export { DEFAULT_NAMESPACE } from './namespaces.js';
export type { CheckedTarget } from './verification.js';

export interface NamingOptions {
  autoCreateService: boolean;
  verification: GuardOptions;
}

/**
 * The domain: every rule of namespaces, services and instances lives in this folder, one file per
 * resource (PolarisMesh's service/). Adapters call this facade; the resources validate, decide
 * inside the batch's transaction, and read from the index. None talks to the store outside a
 * batched write, but for reading the event log.
 *
 * Every write takes the context (`ctx`) of the request it serves, if any: it is not applied once
 * that request's client has gone or its deadline passed, and it learns the revision it committed.
 */
export class NamingService {
  /** The event log: read for the API, pruned on the schedule (events/). */
  readonly events: EventLog;
  private readonly namespaces: Namespaces;
  private readonly services: Services;
  private readonly instances: Instances;
  private readonly heartbeats: Heartbeats;
  private readonly health: HealthTransitions;
  private readonly verification: Verification;
  private readonly discovery: Discovery;

  /** `hooks`: where heartbeats, checks due and index misses go; none, for the domain alone (tests). */
  constructor(
    index: RegistryIndex,
    batcher: WriteBatcher,
    store: Store,
    clock: Clock,
    metrics: Metrics,
    opts: NamingOptions,
    hooks: NamingHooks = NO_HOOKS,
  ) {
    const ctx = new NamingContext(index, batcher, clock, metrics);
    this.events = new EventLog(store, batcher, clock);
    this.namespaces = new Namespaces(ctx);
    this.services = new Services(ctx, hooks.verification, opts.autoCreateService);
    this.verification = new Verification(ctx, opts.verification);
    this.instances = new Instances(ctx, this.services, this.verification, hooks.verification);
    this.health = new HealthTransitions(ctx);
    this.heartbeats = new Heartbeats(ctx, this.health, hooks.heartbeats, hooks.indexMiss);
    this.discovery = new Discovery(ctx);
  }

  // ---- namespaces (namespaces.ts) ------------------------------------------------------------

  /** Makes sure the default namespace exists; called once at start. */
  ensureDefaultNamespace(): Promise<void> {
    return this.namespaces.ensureDefault();
  }

  listNamespaces(): Namespace[] {
    return this.namespaces.list();
  }

  getNamespace(name: string): Namespace & { serviceCount: number } {
    return this.namespaces.get(name);
  }

  createNamespace(input: unknown, ctx?: RequestContext): Promise<Namespace> {
    return this.namespaces.create(input, ctx);
  }

  deleteNamespace(name: string, ctx?: RequestContext): Promise<void> {
    return this.namespaces.delete(name, ctx);
  }

  // ---- services (services.ts) ----------------------------------------------------------------

  /** `visible`: which services this caller may see (the guard's answer); the others are not counted either. */
  listServices(namespace: string, q: ServiceQuery): { total: number; services: Service[] } {
    return this.services.list(namespace, q);
  }

  getService(namespace: string, name: string): Service {
    return this.services.get(namespace, name);
  }

  createService(namespace: string, input: unknown, ctx?: RequestContext): Promise<Service> {
    return this.services.create(namespace, input, ctx);
  }

  patchService(namespace: string, name: string, input: unknown, ctx?: RequestContext): Promise<Service> {
    return this.services.patch(namespace, name, input, ctx);
  }

  deleteService(namespace: string, name: string, force: boolean, ctx?: RequestContext): Promise<void> {
    return this.services.delete(namespace, name, force, ctx);
  }

  // ---- instances (instances.ts, verification.ts) ---------------------------------------------

  register(
    namespace: string,
    service: string,
    input: unknown,
    creds: InstanceCredentials = {},
    ctx?: RequestContext,
  ): Promise<RegisterResponse> {
    return this.instances.register(namespace, service, input, creds, ctx);
  }

  /** A verification check's outcome, written if it still applies (verification.ts). */
  completeVerification(
    id: string,
    checked: CheckedTarget,
    outcome: CheckOutcome,
  ): Promise<'written' | 'unchanged' | 'stale'> {
    return this.verification.complete(id, checked, outcome);
  }

  getInstance(id: string): Instance {
    return this.instances.get(id);
  }

  patchInstance(id: string, input: unknown, creds: InstanceCredentials, ctx?: RequestContext): Promise<Instance> {
    return this.instances.patch(id, input, creds, ctx);
  }

  deregister(id: string, creds: InstanceCredentials, ctx?: RequestContext): Promise<void> {
    return this.instances.deregister(id, creds, ctx);
  }

  // ---- heartbeats and health (heartbeats.ts, health-transitions.ts) ---------------------------

  heartbeat(id: string, token: string | undefined, writer?: ServiceWriter, ctx?: RequestContext): Promise<void> {
    return this.heartbeats.heartbeat(id, token, writer, ctx);
  }

  heartbeatBatch(
    items: ReadonlyArray<Omit<HeartbeatItem, 'token'> & { token: string | undefined }>,
    writer?: ServiceWriter,
    ctx?: RequestContext,
  ): Promise<HeartbeatBatchResponse> {
    return this.heartbeats.batch(items, writer, ctx);
  }

  /** Health transitions, decided by the health checker. */
  setHealth(
    id: string,
    healthy: boolean,
    reason: string,
    expectedHeartbeat?: number,
    ctx?: RequestContext,
  ): Promise<boolean> {
    return this.health.setHealth(id, healthy, reason, expectedHeartbeat, ctx);
  }

  /** Removes an instance that stayed unhealthy past the cleanup delay. */
  cleanup(id: string, unhealthySince: number): Promise<boolean> {
    return this.health.cleanup(id, unhealthySince);
  }

  /** Writes the given instances' in-memory lastHeartbeat to the store in one batched write. */
  flushHeartbeats(ids: Iterable<string>): Promise<number> {
    return this.heartbeats.flush(ids);
  }

  // ---- discovery (discovery.ts) and events (events/) ------------------------------------------

  resolveService(namespace: string, service: string): ServiceEntry {
    return this.discovery.resolve(namespace, service);
  }

  /** What a watch with allowMissing sends for a service that does not exist: empty, at revision 0. */
  static missingAnswer(namespace: string, service: string): DiscoverResponse {
    return missingAnswer(namespace, service);
  }

  watchedService(namespace: string, service: string, allowMissing: boolean): ServiceEntry | undefined {
    return this.discovery.watched(namespace, service, allowMissing);
  }

  answerBytes(entry: ServiceEntry, filter: DiscoverFilter): Buffer {
    return this.discovery.answerBytes(entry, filter);
  }

  answer(entry: ServiceEntry, filter: DiscoverFilter): DiscoverResponse {
    return this.discovery.answer(entry, filter);
  }

  listEvents(filter: EventFilter): Promise<RegistryEvent[]> {
    return this.events.list(filter);
  }

  pruneEvents(keep: number, maxAgeMs: number): Promise<number> {
    return this.events.prune(keep, maxAgeMs);
  }
}
