import fs from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { HealthStatusFilter, IsolatedFilter, Metadata } from '@muster/api';
import { MusterError, MusterHttpClient, type TlsOptions } from '@muster/client';
import { cliSession, saveCliSession } from '../revision-state.js';

export type OutputFormat = 'table' | 'json';

interface GlobalOptions {
  server: string;
  token?: string;
  /** The former name of --token. */
  accessToken?: string;
  output: OutputFormat;
  ca?: string;
  cert?: string;
  key?: string;
}

/** What every client command's action needs: a client and the output format. */
export interface CommandContext {
  client: MusterHttpClient;
  output: OutputFormat;
}

export function context(cmd: Command): CommandContext {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const tls = tlsOptions(g);
  const token = accessToken(cmd, g);
  return {
    client: new MusterHttpClient({
      server: g.server,
      readYourWrites: cliSession(),
      ...(tls ? { tls } : {}),
      ...(token ? { token } : {}),
    }),
    output: g.output,
  };
}

/** --token, else MUSTER_TOKEN; --access-token still works, and wins over the variable as a flag does. */
function accessToken(cmd: Command, g: GlobalOptions): string | undefined {
  if (g.accessToken === undefined) return g.token;
  process.stderr.write('muster: note: --access-token is now --token (or MUSTER_TOKEN); the old name will go\n');
  return cmd.getOptionValueSourceWithGlobals('token') === 'cli' ? g.token : g.accessToken;
}

/** --ca, --cert and --key (or MUSTER_CA, MUSTER_CERT, MUSTER_KEY) read into the SDK's tls option. */
function tlsOptions(g: GlobalOptions): TlsOptions | undefined {
  const tls: TlsOptions = {};
  for (const k of ['ca', 'cert', 'key'] as const) {
    const file = g[k];
    if (file === undefined || file === '') continue;
    try {
      tls[k] = fs.readFileSync(file);
    } catch (err) {
      throw new MusterError('INVALID_ARGUMENT', `cannot read the --${k} file ${file}: ${(err as Error).message}`, {
        field: k,
      });
    }
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new MusterError(
      'INVALID_ARGUMENT',
      `--${tls.cert === undefined ? 'key' : 'cert'} needs --${tls.cert === undefined ? 'cert' : 'key'} too: a client certificate is the pair`,
      { field: tls.cert === undefined ? 'cert' : 'key' },
    );
  }
  return Object.keys(tls).length > 0 ? tls : undefined;
}

/**
 * Wraps an action so every failure reads `muster: CODE: message` and exits 1; commander's own
 * usage errors exit 2 before an action runs.
 */
export function run<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
      saveCliSession();
    } catch (err) {
      fail(err);
    }
  };
}

export function fail(err: unknown): never {
  const e =
    err instanceof MusterError
      ? err
      : new MusterError('INTERNAL', err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.stderr.write(`muster: ${e.code}: ${e.message}\n`);
  process.exit(1);
}

export const namespaceOption = () => new Option('-n, --namespace <name>', 'namespace').default('default');

/** The options of the commands that show instances: an operator sees all of them unless filtered. */
export interface InstanceViewOptions {
  namespace: string;
  status: HealthStatusFilter;
  isolated: IsolatedFilter;
  trunc: boolean;
}

export function instanceViewOptions(cmd: Command): Command {
  return cmd
    .addOption(namespaceOption())
    .addOption(new Option('--status <status>', 'health filter').choices(['healthy', 'unhealthy', 'all']).default('all'))
    .addOption(new Option('--isolated <isolated>', 'isolation filter').choices(['false', 'true', 'all']).default('all'))
    .option('--no-trunc', 'show full ids and metadata');
}

export function integer(name: string): (value: string) => number {
  return (value) => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be an integer.`);
    return Number(value);
  };
}

/** Collects `--metadata k=v` (repeated or several after one flag) into one object. */
export function keyValue(value: string, previous: Metadata | undefined): Metadata {
  const i = value.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`expected key=value, got ${JSON.stringify(value)}.`);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}
