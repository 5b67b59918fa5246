import type { EventEmitter } from 'node:events';

/**
 * Emits an event without letting a listener's exception unwind into the SDK's own state
 * machine (a registration would retry forever, a view would go stale). The listener's error is
 * rethrown on its own turn of the event loop, where the application sees its own bug.
 */
export function emitSafely<T extends Record<keyof T, unknown[]>, K extends keyof T & string>(
  emitter: EventEmitter<T>,
  event: K,
  ...args: T[K]
): void {
  try {
    (emitter.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}
