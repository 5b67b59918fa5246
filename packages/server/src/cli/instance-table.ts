import type { DiscoveredInstance } from '@muster/api';
import { address, age, pairs, shortId, table, truncate, yesNo } from './format.js';

/** The instance table of `instances ls` and `watch`. */
export function instanceTable(instances: DiscoveredInstance[], full = false): string {
  const head = ['ID', 'ADDRESS', 'HEALTHY', 'ISOLATE', 'WEIGHT', 'HEARTBEAT', 'METADATA'];
  if (instances.length === 0) return `${table(head, [])}\n(no instances)`;
  return table(
    head,
    instances.map((i) => [
      shortId(i.id, full),
      address(i.host, i.port),
      yesNo(i.healthy),
      yesNo(i.isolate),
      i.weight,
      `${age(i.lastHeartbeatAgeMs)} ago`,
      full ? pairs(i.metadata) : truncate(pairs(i.metadata), 48),
    ]),
  );
}
