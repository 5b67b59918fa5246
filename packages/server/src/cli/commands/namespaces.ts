import type { Command } from 'commander';
import { json, print, table, time } from '../format.js';
import { context, run } from './common.js';

export function namespaceCommands(program: Command): void {
  const ns = program.command('namespaces').alias('ns').description('list, create and delete namespaces');

  ns.command('ls')
    .alias('list')
    .description('list namespaces')
    .action(
      run(async (_opts: object, cmd: Command) => {
        const { client, output } = context(cmd);
        const all = await client.listNamespaces();
        if (output === 'json') return print(json(all));
        print(
          table(
            ['NAME', 'CREATED', 'COMMENT'],
            all.map((n) => [n.name, time(n.createdAt), n.comment]),
          ),
        );
      }),
    );

  ns.command('create <name>')
    .description('create a namespace')
    .option('--comment <text>', 'what the namespace is for')
    .action(
      run(async (name: string, opts: { comment?: string }, cmd: Command) => {
        const { client, output } = context(cmd);
        const created = await client.createNamespace(
          opts.comment === undefined ? { name } : { name, comment: opts.comment },
        );
        print(output === 'json' ? json(created) : `namespace "${created.name}" created`);
      }),
    );

  ns.command('delete <name>')
    .alias('rm')
    .description('delete a namespace (refused while it has services)')
    .action(
      run(async (name: string, _opts: object, cmd: Command) => {
        const { client, output } = context(cmd);
        await client.deleteNamespace(name);
        print(output === 'json' ? json({ namespace: name, deleted: true }) : `namespace "${name}" deleted`);
      }),
    );
}
