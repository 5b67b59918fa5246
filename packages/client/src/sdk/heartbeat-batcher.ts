import type { HeartbeatBatchResponse, HeartbeatItem } from '@muster/api';
import { LIMITS, MusterError } from '@muster/api';
import type { Endpoints } from '../registry/endpoints.js';
import { asMusterError, HeartbeatFailedError } from '../errors.js';

type Result = HeartbeatBatchResponse['results'][number];
interface Waiting {
  item: HeartbeatItem;
  done: (r: Result | MusterError) => void;
}

/**
 * Heartbeats of every instance the process keeps alive, sent together: those due in the same
 * tick travel as one batch (one message on the gRPC HeartbeatStream, one POST /v1/heartbeats on
 * HTTP). Each sender gets its own item's result, or the call's error when the batch failed.
 */
export class HeartbeatBatcher {
  private queue: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly endpoints: Endpoints) {}

  send(item: HeartbeatItem): Promise<Result | MusterError> {
    return new Promise((done) => {
      this.queue.push({ item, done });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (let i = 0; i < all.length; i += LIMITS.heartbeatBatchMax)
      void this.sendBatch(all.slice(i, i + LIMITS.heartbeatBatchMax));
  }

  private async sendBatch(batch: Waiting[]): Promise<void> {
    try {
      const results = await this.endpoints.call((api) => api.heartbeats(batch.map((w) => w.item)));
      batch.forEach((w, i) =>
        w.done(results[i] ?? new HeartbeatFailedError('the server answered fewer heartbeat results than it was sent')),
      );
    } catch (err) {
      const e = asMusterError(err);
      for (const w of batch) w.done(e);
    }
  }
}
