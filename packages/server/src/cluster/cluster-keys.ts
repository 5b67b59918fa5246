/**
 * Every Redis key and channel of cluster mode, in one place, so the modules (and an operator
 * reading `redis-cli --scan`) agree on names. `prefix` is the deployment's namespace in a shared
 * Redis (e.g. `muster:`); it is used as given, so it should end with a separator.
 */
export interface ClusterKeys {
  /** A named lease: a string holding the holder's node id, with a PX expiry. */
  lease(name: string): string;
  /** The lease of the one node that runs the expiry sweep. */
  readonly sweepLease: string;
  /** Hash: instance id -> newest heartbeat time (ms since the epoch). */
  readonly heartbeats: string;
  /** Pub/sub channel of change notifications. */
  readonly changes: string;
  /** Hash: node id -> JSON of the node's directory entry. */
  readonly nodes: string;
  /** Counter: one more at every acquisition of the sweep lease (FlushBarrier). */
  readonly flushGeneration: string;
  /** Hash: node id -> the flush generation its last complete heartbeat flush saw. */
  readonly flushed: string;
}

export function clusterKeys(prefix: string): ClusterKeys {
  return {
    lease: (name) => `${prefix}lease:${name}`,
    sweepLease: `${prefix}lease:sweep`,
    heartbeats: `${prefix}hb`,
    changes: `${prefix}changes`,
    nodes: `${prefix}nodes`,
    flushGeneration: `${prefix}flushgen`,
    flushed: `${prefix}flushed`,
  };
}
