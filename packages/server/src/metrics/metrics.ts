import client from 'prom-client';

type Inc = { inc(value?: number): void };

/**
 * Every metric Muster exports, on a registry of its own so several servers in one process (the
 * tests) do not collide. Hot-path counters are bound to their labels once.
 */
export class Metrics {
  readonly registry = new client.Registry();
  readonly registrations: client.Counter<'result'>;
  readonly heartbeats: client.Counter<'result'>;
  readonly discoveries: client.Counter<'answer'>;
  readonly instances: client.Gauge<'state'>;
  readonly batchSize: client.Histogram;
  readonly storeCommitSeconds: client.Histogram;
  readonly selfPreservation: client.Counter;
  readonly healthTransitions: client.Counter<'to'>;
  readonly httpRequests: client.Counter<'method' | 'route' | 'status'>;
  readonly grpcRequests: client.Counter<'method' | 'code'>;
  readonly watchers: client.Gauge<'kind'>;
  readonly verificationChecks: client.Counter<'outcome'>;

  readonly reg: { created: Inc; updated: Inc; rejected: Inc };
  readonly hb: { ok: Inc; rejected: Inc };
  readonly disc: { cached: Inc; filtered: Inc; notModified: Inc };

  constructor(instanceStates: () => { healthy: number; unhealthy: number; isolated: number }) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'muster_' });
    this.registrations = new client.Counter({
      name: 'muster_registrations_total',
      help: 'Instance registrations by result (created, updated, rejected)',
      labelNames: ['result'],
      registers,
    });
    this.heartbeats = new client.Counter({
      name: 'muster_heartbeats_total',
      help: 'Heartbeats by result (ok, rejected)',
      labelNames: ['result'],
      registers,
    });
    this.discoveries = new client.Counter({
      name: 'muster_discoveries_total',
      help: 'Discovery answers by kind (cached, filtered, not_modified)',
      labelNames: ['answer'],
      registers,
    });
    this.instances = new client.Gauge({
      name: 'muster_instances',
      help: 'Instances in the registry by state',
      labelNames: ['state'],
      registers,
      collect() {
        const s = instanceStates();
        this.set({ state: 'healthy' }, s.healthy);
        this.set({ state: 'unhealthy' }, s.unhealthy);
        this.set({ state: 'isolated' }, s.isolated);
      },
    });
    this.batchSize = new client.Histogram({
      name: 'muster_batch_size',
      help: 'Writes per store transaction',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers,
    });
    this.storeCommitSeconds = new client.Histogram({
      name: 'muster_store_commit_seconds',
      help: 'Time to run and commit one batch transaction',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.selfPreservation = new client.Counter({
      name: 'muster_self_preservation_total',
      help: 'Sweeps that kept instances healthy because too many would have expired at once',
      registers,
    });
    this.healthTransitions = new client.Counter({
      name: 'muster_health_transitions_total',
      help: 'Health transitions by target state',
      labelNames: ['to'],
      registers,
    });
    this.httpRequests = new client.Counter({
      name: 'muster_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.grpcRequests = new client.Counter({
      name: 'muster_grpc_requests_total',
      help: 'gRPC calls of muster.v1.Registry by method and status code',
      labelNames: ['method', 'code'],
      registers,
    });
    this.watchers = new client.Gauge({
      name: 'muster_watchers',
      help: 'Open long-polls and watch streams',
      labelNames: ['kind'],
      registers,
    });
    this.verificationChecks = new client.Counter({
      name: 'muster_verification_checks_total',
      help: 'Verified registration checks by outcome (verified, or why they failed: wrong_answer, timeout, redirect, too_large, status, bad_response, connection, dns, address_refused)',
      labelNames: ['outcome'],
      registers,
    });
    this.reg = {
      created: this.registrations.labels('created'),
      updated: this.registrations.labels('updated'),
      rejected: this.registrations.labels('rejected'),
    };
    this.hb = { ok: this.heartbeats.labels('ok'), rejected: this.heartbeats.labels('rejected') };
    this.disc = {
      cached: this.discoveries.labels('cached'),
      filtered: this.discoveries.labels('filtered'),
      notModified: this.discoveries.labels('not_modified'),
    };
  }
}
