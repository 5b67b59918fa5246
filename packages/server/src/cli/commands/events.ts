import type { Command } from 'commander';
import type { EventType } from '@muster/api';
import type { EventQuery } from '@muster/client';
import { json, pairs, print, shortId, table, time, truncate } from '../format.js';
import { context, integer, namespaceOption, run } from './common.js';

interface EventOptions {
  namespace: string;
  allNamespaces?: boolean;
  service?: string;
  type?: string;
  since?: string;
  limit?: number;
  trunc: boolean;
}

export function eventsCommand(program: Command): void {
  program
    .command('events')
    .description('recent registry events, oldest first')
    .addOption(namespaceOption())
    .option('-A, --all-namespaces', 'events of every namespace')
    .option('--service <service>', 'only this service')
    .option('--type <types>', 'only these comma-separated types, e.g. instance.unhealthy,instance.removed')
    .option('--since <when>', 'only events after this ISO-8601 time or duration ago (10m, 2h)')
    .option('--limit <n>', 'the latest n events (default 100, at most 1000)', integer('limit'))
    .option('--no-trunc', 'show full ids and details')
    .action(
      run(async (opts: EventOptions, cmd: Command) => {
        const { client, output } = context(cmd);
        const q: EventQuery = {};
        if (!opts.allNamespaces) q.namespace = opts.namespace;
        if (opts.service !== undefined) q.service = opts.service;
        if (opts.type !== undefined) q.type = opts.type.split(',').map((t) => t.trim()) as EventType[];
        if (opts.since !== undefined) q.since = opts.since;
        if (opts.limit !== undefined) q.limit = opts.limit;
        // The server answers newest first so that `limit` keeps the latest; read like a log.
        const events = (await client.events(q)).reverse();
        if (output === 'json') return print(json(events));
        print(
          table(
            ['ID', 'TIME', 'TYPE', 'NAMESPACE', 'SERVICE', 'INSTANCE', 'DETAIL'],
            events.map((e) => [
              e.id,
              time(e.at),
              e.type,
              e.namespace,
              e.service ?? '',
              e.instanceId ? shortId(e.instanceId, !opts.trunc) : '',
              opts.trunc ? truncate(pairs(e.detail), 60) : pairs(e.detail),
            ]),
          ),
        );
      }),
    );
}
