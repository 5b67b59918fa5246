import type { Command } from 'commander';
import { age, json, print, table, time } from '../format.js';
import { context, run } from './common.js';

export function clusterCommand(program: Command): void {
  program
    .command('cluster')
    .description('the nodes of the cluster, and which one holds the sweep lease')
    .action(
      run(async (_opts: unknown, cmd: Command) => {
        const { client, output } = context(cmd);
        const status = await client.cluster();
        if (output === 'json') return print(json(status));
        print(
          table(
            ['NODE', 'HTTP', 'GRPC', 'VERSION', 'STARTED', 'LAST SEEN', 'LEASE'],
            status.nodes.map((n) => [
              `${n.id}${n.self ? ' (this)' : ''}`,
              n.httpAddress,
              n.grpcAddress,
              n.version,
              time(n.startedAt),
              n.stale ? `${age(n.lastSeenAgoMs)} ago (stale)` : `${age(n.lastSeenAgoMs)} ago`,
              n.leaseHolder ? 'holder' : '',
            ]),
          ),
        );
        if (status.mode === 'single') print('single node: no cluster.redis configured');
        else if (status.leaseHolder === null)
          print('no node holds the sweep lease right now: nobody expires instances until one does');
      }),
    );
}
