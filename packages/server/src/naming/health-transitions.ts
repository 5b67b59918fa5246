import type { RequestContext } from '../batch/request-context.js';
import type { InstanceRecord } from '../model/records.js';
import type { NamingContext } from './naming-context.js';

/** An instance's health as the health checker (and a resumed heartbeat) decides it, and its removal when long dead. */
export class HealthTransitions {
  constructor(private readonly ctx: NamingContext) {}

  /**
   * Re-checked inside the transaction, so a heartbeat that arrived meanwhile wins over an expiry:
   * an expiry decided on `expectedHeartbeat` is dropped once the instance has a newer one.
   */
  async setHealth(
    id: string,
    healthy: boolean,
    reason: string,
    expectedHeartbeat?: number,
    rctx?: RequestContext,
  ): Promise<boolean> {
    return this.ctx.batcher.submit(
      async (tx) => {
        const cur = await tx.getInstance(id);
        const live = this.ctx.index.instances.get(id);
        if (!cur || cur.healthy === healthy) return false;
        if (!healthy && live && expectedHeartbeat !== undefined && live.lastHeartbeat !== expectedHeartbeat)
          return false;
        const now = this.ctx.clock.now();
        const svc = (await tx.getService(cur.namespace, cur.service))!;
        const lastHeartbeat = Math.max(cur.lastHeartbeat, live?.lastHeartbeat ?? 0);
        const next: InstanceRecord = { ...cur, healthy, healthChangedAt: now, updatedAt: now, lastHeartbeat };
        next.revision = await this.ctx.bump(tx, svc, healthy ? 'instance.healthy' : 'instance.unhealthy', id, {
          reason,
          lastHeartbeatAgeMs: now - lastHeartbeat,
        });
        await tx.putInstance(next, cur);
        this.ctx.metrics.healthTransitions.labels(healthy ? 'healthy' : 'unhealthy').inc();
        return true;
      },
      this.ctx.instanceHints(id),
      rctx,
    );
  }

  /** Removes an instance that stayed unhealthy past the cleanup delay, unless it changed since `unhealthySince`. */
  async cleanup(id: string, unhealthySince: number): Promise<boolean> {
    return this.ctx.batcher.submit(async (tx) => {
      const cur = await tx.getInstance(id);
      if (!cur || cur.healthy || cur.healthChangedAt !== unhealthySince) return false;
      await tx.deleteInstance(id);
      const svc = (await tx.getService(cur.namespace, cur.service))!;
      await this.ctx.bump(tx, svc, 'instance.removed', id, {
        reason: 'unhealthy past cleanupAfter',
        unhealthyForMs: this.ctx.clock.now() - cur.healthChangedAt,
      });
      return true;
    }, this.ctx.instanceHints(id));
  }
}
