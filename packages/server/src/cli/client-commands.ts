import type { Command } from 'commander';

/** The commands that talk to a running server (filled in by the CLI work). */
export function registerClientCommands(_program: Command): void {}
