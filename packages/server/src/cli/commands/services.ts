import type { Command } from 'commander';
import type { Service } from '@muster/api';
import { json, keyValues, print, table, time, truncate } from '../format.js';
import { context, namespaceOption, run } from './common.js';

const PAGE = 1000; // the server's largest page

export function serviceCommands(program: Command): void {
  const svc = program.command('services').alias('svc').description('list, show and delete services');

  svc
    .command('ls')
    .alias('list')
    .description('list the services of a namespace with their instance counts')
    .addOption(namespaceOption())
    .option('--prefix <prefix>', 'only services whose name starts with this')
    .action(
      run(async (opts: { namespace: string; prefix?: string }, cmd: Command) => {
        const { client, output } = context(cmd);
        const services: Service[] = [];
        let total = 0;
        do {
          const page = await client.listServices(opts.namespace, {
            offset: services.length,
            limit: PAGE,
            ...(opts.prefix ? { prefix: opts.prefix } : {}),
          });
          total = page.total;
          services.push(...page.services);
          if (page.services.length === 0) break;
        } while (services.length < total);
        if (output === 'json') return print(json({ total, services }));
        print(
          table(
            ['NAME', 'INSTANCES', 'HEALTHY', 'REVISION', 'UPDATED', 'COMMENT'],
            services.map((s) => [
              s.name,
              s.instanceCount,
              s.healthyInstanceCount,
              s.revision,
              time(s.updatedAt),
              truncate(s.comment, 40),
            ]),
          ),
        );
      }),
    );

  svc
    .command('show <service>')
    .description('show one service')
    .addOption(namespaceOption())
    .action(
      run(async (name: string, opts: { namespace: string }, cmd: Command) => {
        const { client, output } = context(cmd);
        const s = await client.getService(opts.namespace, name);
        if (output === 'json') return print(json(s));
        print(
          keyValues([
            ['namespace', s.namespace],
            ['name', s.name],
            ['revision', s.revision],
            ['instances', s.instanceCount],
            ['healthy', s.healthyInstanceCount],
            [
              'verification',
              s.verification.enabled
                ? `on at ${s.verification.path} (${s.verification.pendingInstanceCount} pending, ${s.verification.failedInstanceCount} failed)`
                : 'off',
            ],
            ['comment', s.comment],
            ['created', time(s.createdAt)],
            ['updated', time(s.updatedAt)],
            ...Object.entries(s.metadata).map(([k, v]): [string, string] => [`metadata.${k}`, v]),
          ]),
        );
      }),
    );

  svc
    .command('delete <service>')
    .alias('rm')
    .description('delete a service (refused while it has instances unless --force)')
    .addOption(namespaceOption())
    .option('--force', 'also deregister its instances')
    .action(
      run(async (name: string, opts: { namespace: string; force?: boolean }, cmd: Command) => {
        const { client, output } = context(cmd);
        await client.deleteService(opts.namespace, name, { force: opts.force === true });
        print(
          output === 'json'
            ? json({ namespace: opts.namespace, service: name, deleted: true })
            : `service "${name}" deleted from namespace "${opts.namespace}"`,
        );
      }),
    );
}
