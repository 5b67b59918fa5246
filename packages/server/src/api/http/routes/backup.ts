import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ALL } from '../../../auth/rules.js';
import { Errors } from '../../../errors.js';
import type { HttpDeps } from '../context.js';
import { errors } from '../schemas.js';

/**
 * A consistent copy of the SQLite store while the server runs, for admins: written to a file in
 * the data directory (the one place sure to be writable and to have room), streamed, removed.
 */
export function backupRoutes(app: FastifyInstance, { backup, config }: HttpDeps): void {
  app.get(
    '/v1/backup',
    {
      config: { op: { kind: 'manage', rights: () => [{ level: 'admin', on: [ALL, ALL] }] } },
      schema: {
        tags: ['system'],
        summary: 'A consistent copy of the SQLite store, taken while the server runs (admin)',
        description:
          'Answers the database file (application/vnd.sqlite3). `muster backup FILE` saves it; `muster restore FILE` puts it back with the server stopped. A MySQL store answers 409: use its own backup tools.',
        response: {
          200: { description: 'the SQLite database file', type: 'string', format: 'binary' },
          ...errors(401, 403, 409),
        },
      },
    },
    async (req, reply) => {
      if (!backup) throw Errors.backupUnsupported(config.store.type);
      const file = path.resolve(config.dataDir, `.backup-${crypto.randomBytes(6).toString('hex')}.db`);
      try {
        await backup(file);
      } catch (err) {
        fs.rmSync(file, { force: true });
        throw err;
      }
      req.log.info({ bytes: fs.statSync(file).size }, 'backup taken');
      const stream = fs.createReadStream(file);
      // Unlinked once open: the stream still reads it, and nothing is left behind if the client goes.
      stream.once('open', () => fs.rmSync(file, { force: true }));
      stream.once('error', () => fs.rmSync(file, { force: true }));
      return reply
        .type('application/vnd.sqlite3')
        .header(
          'content-disposition',
          `attachment; filename="muster-${new Date().toISOString().replace(/[:.]/g, '-')}.db"`,
        )
        .send(stream);
    },
  );
}
