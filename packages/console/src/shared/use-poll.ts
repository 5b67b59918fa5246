import { useEffect, useRef, useState } from 'react';

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  /** Fetch again now (after a change this tab made). */
  refresh(): void;
}

/**
 * Calls `load` now and every `intervalMs` while the page is open; a new `key` starts over.
 * Calls never overlap: a slow server is not asked again before it answered.
 */
export function usePoll<T>(load: () => Promise<T>, intervalMs: number, key: string): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const loadRef = useRef(load);
  loadRef.current = load;
  const kick = useRef<() => void>(() => {});

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    const tick = async () => {
      clearTimeout(timer);
      if (running) return;
      running = true;
      try {
        const d = await loadRef.current();
        if (!stopped) {
          setData(d);
          setError(undefined);
        }
      } catch (err) {
        if (!stopped) setError(err as Error);
      } finally {
        running = false;
        if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
      }
    };
    kick.current = () => void tick();
    setData(undefined);
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [key, intervalMs]);

  return { data, error, refresh: () => kick.current() };
}
