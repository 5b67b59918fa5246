import type { Command } from 'commander';
import type { Metadata, RegisterRequest } from '@muster/api';
import { json, keyValues, print } from '../format.js';
import { context, integer, keyValue, namespaceOption, run } from './common.js';

interface RegisterOptions {
  namespace: string;
  host: string;
  port: number;
  ttl?: number;
  weight?: number;
  metadata?: Metadata;
  id?: string;
  heartbeatToken?: string;
}

const HEARTBEAT_TOKEN = '--heartbeat-token <token>';

export function registrationCommands(program: Command): void {
  program
    .command('register <service>')
    .description('register an instance; prints its id and heartbeatToken')
    .addOption(namespaceOption())
    .requiredOption('--host <host>', 'address of the instance')
    .requiredOption('--port <port>', 'port of the instance', integer('port'))
    .option('--ttl <seconds>', 'heartbeat TTL: unhealthy after 3 × ttl without a heartbeat', integer('ttl'))
    .option('--weight <weight>', 'load-balancing weight', integer('weight'))
    .option('--metadata <key=value...>', 'metadata, repeatable', keyValue)
    .option('--id <id>', 'instance id (derived from namespace, service, host and port when absent)')
    .option(HEARTBEAT_TOKEN, "the instance's heartbeatToken, to register it again while it is alive")
    .action(
      run(async (service: string, opts: RegisterOptions, cmd: Command) => {
        const { client, output } = context(cmd);
        const req: RegisterRequest = { host: opts.host, port: opts.port };
        if (opts.id !== undefined) req.id = opts.id;
        if (opts.ttl !== undefined) req.healthCheck = { ttl: opts.ttl };
        if (opts.weight !== undefined) req.weight = opts.weight;
        if (opts.metadata !== undefined) req.metadata = opts.metadata;
        const r = await client.register(
          opts.namespace,
          service,
          req,
          opts.heartbeatToken === undefined ? {} : { token: opts.heartbeatToken },
        );
        if (output === 'json') return print(json(r));
        print(
          keyValues([
            ['id', r.instance.id],
            ['heartbeatToken', r.heartbeatToken],
            ['status', r.created ? 'created' : 'updated'],
          ]),
        );
        // Nothing heartbeats for a CLI registration: say so, or the expiry looks like a bug.
        process.stderr.write(
          `note: the instance turns unhealthy after ${3 * r.instance.healthCheck.ttl}s without a heartbeat (PUT /v1/instances/{id}/heartbeat with the heartbeatToken)\n`,
        );
      }),
    );

  program
    .command('deregister <id>')
    .description(
      'deregister an instance: with its heartbeatToken, or an access token with write on its service (--token or MUSTER_TOKEN)',
    )
    .option(HEARTBEAT_TOKEN, 'the heartbeatToken answered at registration')
    .action(
      run(async (id: string, opts: { heartbeatToken?: string }, cmd: Command) => {
        const { client, output } = context(cmd);
        await client.deregister(id, opts.heartbeatToken);
        print(output === 'json' ? json({ id, deregistered: true }) : `instance ${id} deregistered`);
      }),
    );

  program
    .command('isolate <id>')
    .description(
      'take an instance out of discovery without deregistering it (--off brings it back); ' +
        "an operator's action: it needs an access token with write on the instance's service (--token or MUSTER_TOKEN)",
    )
    .option('--off', 'end the isolation')
    .option(HEARTBEAT_TOKEN, "instead of an access token, for a server with auth off: the instance's heartbeatToken")
    .action(
      run(async (id: string, opts: { heartbeatToken?: string; off?: boolean }, cmd: Command) => {
        const { client, output } = context(cmd);
        const inst = await client.patchInstance(id, { isolate: opts.off !== true }, opts.heartbeatToken);
        print(output === 'json' ? json(inst) : `instance ${id} ${inst.isolate ? 'isolated' : 'no longer isolated'}`);
      }),
    );
}
