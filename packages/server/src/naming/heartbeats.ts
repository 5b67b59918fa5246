import { performance } from 'node:perf_hooks';
import type { HeartbeatBatchResponse, HeartbeatItem } from '@muster/api';
import { checkContext, type RequestContext } from '../batch/request-context.js';
import { Errors, MusterError } from '../errors.js';
import type { InstanceRecord } from '../model/records.js';
import { checkOwner, type ServiceWriter } from './credentials.js';
import type { HealthTransitions } from './health-transitions.js';
import type { NamingContext } from './naming-context.js';
import type { HeartbeatSink, IndexMiss } from './naming-hooks.js';
import { checkHeartbeatBatchSize } from './validate.js';

/** Heartbeats: taken in memory, told to whoever keeps them (the sink), written to the store in batches. */
export class Heartbeats {
  constructor(
    private readonly ctx: NamingContext,
    private readonly health: HealthTransitions,
    private readonly sink: HeartbeatSink,
    private readonly indexMiss: IndexMiss | undefined,
  ) {}

  /**
   * A heartbeat touches memory only; the store sees it in the periodic flush. A heartbeat that
   * brings an unhealthy instance back waits until that transition is committed. It counts from
   * when it arrived (`rctx`), and one whose client has gone or that waited past its deadline (a
   * paused process) is dropped with DEADLINE_EXCEEDED: it proves nothing about the instance now.
   */
  async heartbeat(id: string, token: string | undefined, writer?: ServiceWriter, rctx?: RequestContext): Promise<void> {
    const { index, clock, metrics } = this.ctx;
    let rec = index.instances.get(id);
    try {
      if (!rec && this.indexMiss) rec = await this.fromStore(id, this.indexMiss);
      if (!rec) throw this.ctx.missingInstance(id);
      checkOwner(rec, token, writer);
      if (rctx) checkContext(rctx);
    } catch (err) {
      metrics.hb.rejected.inc();
      throw err;
    }
    const at = rctx ? clock.now() - Math.round(performance.now() - rctx.receivedAt) : clock.now();
    index.noteHeartbeat(id, at);
    this.sink(id, at);
    metrics.hb.ok.inc();
    if (!rec.healthy) await this.health.setHealth(id, true, 'heartbeat resumed', undefined, rctx);
  }

  /**
   * A result per item, in order; a missing token fails its item as a single heartbeat's would.
   * A batch over the limit is refused whole (INVALID_ARGUMENT on `heartbeats`), nothing applied.
   */
  async batch(
    items: ReadonlyArray<Omit<HeartbeatItem, 'token'> & { token: string | undefined }>,
    writer?: ServiceWriter,
    rctx?: RequestContext,
  ): Promise<HeartbeatBatchResponse> {
    checkHeartbeatBatchSize('heartbeats', items.length);
    const results = await Promise.all(
      items.map(async (item): Promise<HeartbeatBatchResponse['results'][number]> => {
        try {
          await this.heartbeat(item.id, item.token, writer, rctx);
          return { id: item.id, ok: true };
        } catch (err) {
          const e = err instanceof MusterError ? err : Errors.internal(err);
          return { id: item.id, ok: false, error: e.toJSON().error };
        }
      }),
    );
    return { results };
  }

  /** Writes the given instances' in-memory lastHeartbeat to the store in one batched write. */
  async flush(ids: Iterable<string>): Promise<number> {
    const beats: Array<{ id: string; lastHeartbeat: number }> = [];
    for (const id of ids) {
      const rec = this.ctx.index.instances.get(id);
      if (rec) beats.push({ id, lastHeartbeat: rec.lastHeartbeat });
    }
    if (beats.length > 0) await this.ctx.batcher.submit((tx) => tx.updateHeartbeats(beats));
    return beats.length;
  }

  /**
   * An instance this node has not indexed yet (registered through another node a moment ago),
   * brought in from the store. A store that cannot answer says nothing about the instance: that
   * is UNAVAILABLE, never NOT_FOUND, which would make its owner register it again.
   */
  private async fromStore(id: string, find: IndexMiss): Promise<Readonly<InstanceRecord> | undefined> {
    let found: boolean;
    try {
      found = await find(id);
    } catch (err) {
      throw Errors.instanceLookupFailed(id, err);
    }
    return found ? this.ctx.index.instances.get(id) : undefined;
  }
}
