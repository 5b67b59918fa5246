import { serviceKey } from '../index/registry-index.js';

type Wake = (revision: number | undefined) => void;

/**
 * Wakes long-polls and watch streams when a service's revision moves. The index tells the hub
 * after every committed batch; waiters are woken synchronously, in the same tick.
 */
export class WatchHub {
  private waiters = new Map<string, Set<Wake>>();
  /** What shutdown must end: pending long-polls and open streams. */
  private closers = new Set<() => void>();
  private closed = false;

  /** Called by the index; `revision` is undefined when the service is gone. */
  notify(namespace: string, service: string, revision: number | undefined): void {
    const set = this.waiters.get(serviceKey(namespace, service));
    if (!set) return;
    for (const wake of [...set]) wake(revision);
  }

  /** How many long-polls and streams wait on a service now: what a test waits on instead of sleeping. */
  listeners(namespace: string, service: string): number {
    return this.waiters.get(serviceKey(namespace, service))?.size ?? 0;
  }

  /** Registers a listener until the returned function is called. */
  subscribe(namespace: string, service: string, wake: Wake): () => void {
    const key = serviceKey(namespace, service);
    let set = this.waiters.get(key);
    if (!set) this.waiters.set(key, (set = new Set()));
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(key) === set) this.waiters.delete(key);
    };
  }

  /**
   * Resolves true when the service changes, false when `timeoutMs` passes first or the hub
   * closes (shutdown answers every long-poll at once).
   */
  waitForChange(namespace: string, service: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (changed: boolean) => {
        clearTimeout(timer);
        unsubscribe();
        this.closers.delete(onClose);
        signal?.removeEventListener('abort', onClose);
        resolve(changed);
      };
      const onClose = () => finish(false);
      const unsubscribe = this.subscribe(namespace, service, () => finish(true));
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.closers.add(onClose);
      signal?.addEventListener('abort', onClose, { once: true });
    });
  }

  /** Ends every wait; streams are closed by their owners through onClose listeners. */
  close(): void {
    this.closed = true;
    for (const c of [...this.closers]) c();
  }

  onClose(fn: () => void): () => void {
    if (this.closed) {
      fn();
      return () => {};
    }
    this.closers.add(fn);
    return () => this.closers.delete(fn);
  }
}
