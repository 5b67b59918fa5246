/**
 * The instances that took a heartbeat since the last flush to the store: a single node's, which
 * the health checker writes every flushInterval. (A cluster node's heartbeats go to Redis instead.)
 */
export class UnflushedHeartbeats {
  private ids = new Set<string>();

  /** A heartbeat of `id` was accepted: the naming service's heartbeat sink on a single node. */
  readonly note = (id: string): void => {
    this.ids.add(id);
  };

  get size(): number {
    return this.ids.size;
  }

  /** Everything noted so far, handed over to a flush; what it could not write goes back with `putBack`. */
  take(): Set<string> {
    const ids = this.ids;
    this.ids = new Set();
    return ids;
  }

  putBack(ids: Iterable<string>): void {
    for (const id of ids) this.ids.add(id);
  }
}
