import type { Command } from 'commander';
import { OPTIONS, describeType, envName, flagName } from '../config/options.js';

const camel = (flag: string) => flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** `muster server`: every option of the table as a flag, validated together with file and env. */
export function serverCommand(program: Command): void {
  const cmd = program
    .command('server')
    .description('run a Muster registry server')
    .option('-c, --config <file>', 'YAML configuration file (env MUSTER_CONFIG)');
  for (const o of OPTIONS) {
    // A true/false option given bare (--insecure) means true.
    cmd.option(
      `${flagName(o.key)} ${o.type.kind === 'bool' ? '[value]' : '<value>'}`,
      `${o.description}; ${describeType(o.type)} (default: ${o.default}; env ${envName(o.key)})`,
    );
  }
  cmd.action(async (raw: Record<string, string | undefined>) => {
    const flags: Record<string, unknown> = {};
    for (const o of OPTIONS) {
      const v = raw[camel(flagName(o.key))];
      if (v !== undefined) flags[o.key] = v;
    }
    // Loaded here, not at the top: the client commands should not pay for YAML, fastify and SQLite.
    const { ConfigError, loadConfig } = await import('../config/config.js');
    const { Muster } = await import('../muster.js');
    let muster;
    try {
      const file = raw['config'] ?? process.env['MUSTER_CONFIG'];
      // The constructor reads the tls.* files: a bad one is a configuration error too.
      muster = new Muster(loadConfig({ ...(file ? { file } : {}), env: process.env, flags }));
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`muster: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      muster.log.info({ signal }, 'signal received');
      muster.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          muster.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    try {
      await muster.start();
    } catch (err) {
      // A port in use, a data directory another server holds: one line, nothing created.
      if (err instanceof ConfigError) {
        process.stderr.write(`muster: ${err.message}\n`);
        process.exit(2);
      }
      muster.log.fatal({ err }, 'muster could not start');
      process.exit(1);
    }
  });
}
