import type { DiscoverResponse } from '@muster/api';
import { MusterError } from '@muster/api';
import { errorFromFailure } from './error-mapping.js';
import { readEventStream, type EventSourceMessage } from './sse.js';
import { MalformedStreamError, SnapshotHandlerError, StreamEndedError } from './errors.js';

/** Why a watch stream ended. */
export type WatchEnd =
  /** The caller closed it. */
  | { reason: 'closed' }
  /** The server ended it and said why (`shutdown`, `slow-consumer`): reconnect. */
  | { reason: 'server-close'; serverReason: string; message: string }
  /** The server sent an error (the service was deleted), or a snapshot could not be used. */
  | { reason: 'error'; error: MusterError }
  /** The connection dropped without a word from the server: reconnect. */
  | { reason: 'disconnected'; error: MusterError };

export interface Watch {
  /** Ends the stream; `ended` then settles with reason `closed`. Safe to call more than once. */
  close(): void;
  /** Settles once, when the stream ends; never rejects. */
  readonly ended: Promise<WatchEnd>;
  /** The revision of the last snapshot delivered, for a reconnect to compare against. */
  readonly revision: number | undefined;
}

export type SnapshotHandler = (snapshot: DiscoverResponse) => void;

/** One open SSE watch stream: snapshots go to the handler until it ends. Does not reconnect. */
export class WatchStream implements Watch {
  readonly ended: Promise<WatchEnd>;
  private lastRevision: number | undefined;
  private closedByCaller = false;

  constructor(
    body: ReadableStream<Uint8Array>,
    private readonly abort: () => void,
    private readonly onSnapshot: SnapshotHandler,
    private readonly signal?: AbortSignal,
  ) {
    this.ended = this.pump(body);
  }

  get revision(): number | undefined {
    return this.lastRevision;
  }

  close(): void {
    this.closedByCaller = true;
    this.abort();
  }

  /** By close() or by the caller's signal (which aborts the connection underneath us). */
  private get cancelled(): boolean {
    return this.closedByCaller || this.signal?.aborted === true;
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<WatchEnd> {
    let end: WatchEnd | undefined;
    try {
      await readEventStream(body, (event) => {
        end = this.handle(event);
        return end === undefined && !this.cancelled;
      });
    } catch (err) {
      if (!this.cancelled) end ??= { reason: 'disconnected', error: errorFromFailure(err, 'watch stream') };
    }
    this.abort(); // a stream we stopped reading still holds its connection
    if (end) return end;
    if (this.cancelled) return { reason: 'closed' };
    return {
      reason: 'disconnected',
      error: new StreamEndedError('the server ended the watch stream without saying why'),
    };
  }

  private handle(event: EventSourceMessage): WatchEnd | undefined {
    switch (event.event) {
      case 'snapshot': {
        let snapshot: DiscoverResponse;
        try {
          snapshot = JSON.parse(event.data) as DiscoverResponse;
        } catch (err) {
          return {
            reason: 'error',
            error: new MalformedStreamError('the server sent a snapshot that is not JSON', err),
          };
        }
        this.lastRevision = snapshot.revision;
        try {
          this.onSnapshot(snapshot);
        } catch (err) {
          return { reason: 'error', error: new SnapshotHandlerError(err) };
        }
        return undefined;
      }
      case 'close': {
        const data = parseOr<{ reason?: string; message?: string }>(event.data, {});
        return {
          reason: 'server-close',
          serverReason: data.reason ?? 'unknown',
          message: data.message ?? 'the server closed the watch stream',
        };
      }
      case 'error': {
        const data = parseOr<unknown>(event.data, undefined);
        const error = MusterError.isErrorBody(data)
          ? MusterError.fromBody(data)
          : new MalformedStreamError(`watch stream error: ${event.data}`);
        return { reason: 'error', error };
      }
      default:
        return undefined; // events a newer server may add
    }
  }
}

function parseOr<T>(text: string, fallback: T): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}
