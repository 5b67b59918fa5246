import { useEffect, useState } from 'react';
import { query } from '../../api/http';
import { openSse } from '../../api/sse';
import type { DiscoverResponse, DiscoveredInstance } from '../../api/types';

export interface WatchState {
  instances: DiscoveredInstance[];
  revision: number;
  /** When the snapshot arrived (performance.now()): ages tick from here. */
  receivedAt: number;
  connected: boolean;
  error?: string;
}

/**
 * The service's instances, every health and isolation, kept current by the same SSE watch the
 * SDK's HTTP transport uses: each change brings the whole list, so a missed one cannot leave
 * the table wrong.
 */
export function useServiceWatch(namespace: string, service: string): WatchState | undefined {
  const [state, setState] = useState<WatchState>();
  useEffect(() => {
    setState(undefined);
    const url = `/v1/watch${query({ namespace, service, status: 'all', isolated: 'all' })}`;
    const sse = openSse(url, {
      onEvent(event, data) {
        if (event === 'snapshot') {
          const snap = JSON.parse(data) as DiscoverResponse;
          setState({
            instances: snap.instances,
            revision: snap.revision,
            receivedAt: performance.now(),
            connected: true,
          });
        } else if (event === 'error') {
          const message = (JSON.parse(data) as { error?: { message?: string } }).error?.message ?? 'the watch failed';
          setState((s) => ({
            ...(s ?? { instances: [], revision: 0, receivedAt: performance.now() }),
            connected: false,
            error: message,
          }));
        }
      },
      onDrop(why) {
        setState((s) => ({
          ...(s ?? { instances: [], revision: 0, receivedAt: performance.now() }),
          connected: false,
          error: why,
        }));
      },
    });
    return () => sse.close();
  }, [namespace, service]);
  return state;
}
