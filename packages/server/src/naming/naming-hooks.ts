/** Told of every heartbeat accepted, with when it arrived (ms on the registry's clock). */
export type HeartbeatSink = (id: string, at: number) => void;

/** Where verification checks go (the verification queue). */
export interface VerificationSink {
  /** After the commit: these instances need a check, asked for by `caller` (undefined: the registry itself). */
  checksDue(ids: readonly string[], caller?: string): void;
  /**
   * Takes a place for one more check of this caller, if it has one left (a registration without
   * one is refused); `release` gives it back once the registration is answered, its check queued.
   */
  reserve(caller: string): boolean;
  release(caller: string): void;
}

/**
 * Brings an instance this node's index lacks in from the store; true when it is indexed now.
 * Cluster mode: it may have been registered through another node a moment ago.
 */
export type IndexMiss = (id: string) => Promise<boolean>;

/**
 * Who the naming service tells what, given once at construction by the composition root
 * (muster.ts), which alone decides where heartbeats go: to the health checker's flush on a single
 * node, to Redis in a cluster.
 */
export interface NamingHooks {
  heartbeats: HeartbeatSink;
  verification: VerificationSink;
  /** Unset: an instance the index lacks does not exist (a single node indexes every write it commits). */
  indexMiss?: IndexMiss | undefined;
}

/** For a naming service that tells nobody: tests of the domain alone. */
export const NO_HOOKS: NamingHooks = {
  heartbeats: () => {},
  verification: { checksDue: () => {}, reserve: () => true, release: () => {} },
};
