import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import { Option } from 'commander';
import { MusterError } from '@muster/client';
import { inspectDatabase, restoreDatabase } from '../../store/sqlite/backup-file.js';
import { print } from '../format.js';
import { context, run } from './common.js';

const summary = (s: {
  namespaces: number;
  services: number;
  instances: number;
  bytes: number;
  schemaVersion: number;
}) =>
  `${s.namespaces} namespace(s), ${s.services} service(s), ${s.instances} instance(s), ${s.bytes} bytes, schema version ${s.schemaVersion}`;

export function backupCommands(program: Command): void {
  program
    .command('backup')
    .argument('<file>', 'where to write the copy')
    .description("save a consistent copy of a running server's SQLite store (needs an admin token)")
    .option('--force', 'overwrite <file> if it exists')
    .action(
      run(async (file: string, opts: { force?: boolean }, cmd: Command) => {
        const { client } = context(cmd);
        if (fs.existsSync(file) && !opts.force)
          throw new MusterError('ALREADY_EXISTS', `${file} exists; pass --force to overwrite it`, { field: 'file' });
        const partial = `${file}.partial`;
        try {
          const body = await client.backup({ timeoutMs: 600_000 });
          await pipeline(
            Readable.fromWeb(body as WebReadableStream<Uint8Array>),
            fs.createWriteStream(partial, { mode: 0o600 }),
          );
          const s = inspectDatabase(partial); // a cut-off transfer fails here, before it can pass for a backup
          fs.renameSync(partial, file);
          print(`backup written to ${path.resolve(file)}: ${summary(s)}`);
        } finally {
          fs.rmSync(partial, { force: true });
        }
      }),
    );

  program
    .command('restore')
    .argument('<file>', 'a file written by muster backup')
    .description('replace the SQLite store of a stopped server with a backup (the current one is kept beside it)')
    .addOption(
      new Option('--data-dir <dir>', 'the data directory of the server').env('MUSTER_DATA_DIR').default('./data'),
    )
    .action(
      run(async (file: string, opts: { dataDir: string }) => {
        const r = restoreDatabase(file, opts.dataDir);
        print(`restored ${path.resolve(file)} into ${path.resolve(opts.dataDir)}: ${summary(r.summary)}`);
        if (r.replaced) print(`the previous database is kept as ${r.replaced}`);
        print('start the server to use it; clients re-register what the backup lacks at their next heartbeat');
      }),
    );
}
