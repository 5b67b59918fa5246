import type { RegistryEvent } from '@muster/api';
import type { WriteBatcher } from '../batch/write-batcher.js';
import type { Clock } from '../clock.js';
import type { EventFilter, Store } from '../store/store.js';

/**
 * The event log as the API and the prune schedule see it. Events are written by the writes that
 * make them (event-records.ts, inside their transaction); this reads them back and drops old ones.
 */
export class EventLog {
  constructor(
    private readonly store: Store,
    private readonly batcher: WriteBatcher,
    private readonly clock: Clock,
  ) {}

  /** Recent events for GET /v1/events, as the filter asks: read from the store, never from memory. */
  list(filter: EventFilter): Promise<RegistryEvent[]> {
    return this.store.listEvents(filter);
  }

  /**
   * Drops events beyond the newest `keep` that are older than `maxAgeMs`, as a batched write (the
   * store's pruning and the writes that append events never overlap). Answers how many went.
   */
  prune(keep: number, maxAgeMs: number): Promise<number> {
    return this.batcher.submit((tx) => tx.pruneEvents(keep, this.clock.now() - maxAgeMs));
  }
}
