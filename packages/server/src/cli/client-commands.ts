import type { Command } from 'commander';
import { Option } from 'commander';
import { backupCommands } from './commands/backup.js';
import { clusterCommand } from './commands/cluster.js';
import { doctorCommand } from './commands/doctor.js';
import { eventsCommand } from './commands/events.js';
import { instanceCommands } from './commands/instances.js';
import { namespaceCommands } from './commands/namespaces.js';
import { registrationCommands } from './commands/registration.js';
import { serviceCommands } from './commands/services.js';
import { tokenCommands } from './commands/tokens.js';
import { watchCommand } from './commands/watch.js';

/** The commands that talk to a running server, and the options they share. */
export function registerClientCommands(program: Command): void {
  program
    .addOption(
      new Option('--server <url>', 'Muster server of the client commands')
        .env('MUSTER_SERVER')
        .default('http://127.0.0.1:8090'),
    )
    .addOption(
      new Option(
        '--token <token>',
        "access token (mst_...) of the client commands; an instance's own token is --heartbeat-token",
      ).env('MUSTER_TOKEN'),
    )
    .addOption(new Option('--access-token <token>', 'the former name of --token').hideHelp())
    .addOption(
      new Option('-o, --output <format>', 'output of the client commands').choices(['table', 'json']).default('table'),
    )
    .addOption(
      new Option('--ca <file>', "PEM file of the CA that signed the server's certificate (https:// servers)").env(
        'MUSTER_CA',
      ),
    )
    .addOption(
      new Option('--cert <file>', 'PEM file of a client certificate, for a server that requires one (with --key)').env(
        'MUSTER_CERT',
      ),
    )
    .addOption(new Option('--key <file>', 'PEM file of the private key of --cert').env('MUSTER_KEY'));
  namespaceCommands(program);
  serviceCommands(program);
  instanceCommands(program);
  registrationCommands(program);
  watchCommand(program);
  eventsCommand(program);
  clusterCommand(program);
  tokenCommands(program);
  doctorCommand(program);
  backupCommands(program);
}
