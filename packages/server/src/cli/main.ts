#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerClientCommands } from './client-commands.js';
import { serverCommand } from './server-command.js';
import { VERSION } from '../version.js';

const program = new Command('muster')
  .description('Muster: service registry and discovery')
  .version(VERSION)
  .showHelpAfterError()
  // Usage errors exit 2 like bad configuration; 0 stays 0 for --help and --version.
  .exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : 2));

serverCommand(program);
registerClientCommands(program);

await program.parseAsync(process.argv);
