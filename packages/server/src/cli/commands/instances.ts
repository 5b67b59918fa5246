import type { Command } from 'commander';
import { json, print } from '../format.js';
import { instanceTable } from '../instance-table.js';
import { context, instanceViewOptions, run, type InstanceViewOptions } from './common.js';

export function instanceCommands(program: Command): void {
  const inst = program.command('instances').alias('inst').description('list the instances of a service');

  const ls = inst
    .command('ls <service>')
    .alias('list')
    .description('list the instances of a service (all of them unless filtered)');
  instanceViewOptions(ls).action(
    run(async (service: string, opts: InstanceViewOptions, cmd: Command) => {
      const { client, output } = context(cmd);
      const answer = await client.discover(opts.namespace, service, { status: opts.status, isolated: opts.isolated });
      if (answer.notModified) return; // only answered to a caller that sent a revision
      const { notModified: _, ...snapshot } = answer;
      print(output === 'json' ? json(snapshot) : instanceTable(snapshot.instances, !opts.trunc));
    }),
  );
}
