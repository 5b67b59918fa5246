import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MusterError } from '@muster/api';

/** Where `npm run build` puts the console (packages/console's Vite build): dist/console. */
export const CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../console');

const CSP =
  "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/**
 * The web console at /console (and `/` sends a browser there). Its assets have hashed names and
 * are cached for good; every other path under /console is one of the console's own pages, so it
 * answers index.html and the console's router takes it from there.
 */
export async function consoleAssets(app: FastifyInstance, dir = CONSOLE_DIR): Promise<void> {
  const index = path.join(dir, 'index.html');
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/'));
  if (!fs.existsSync(index)) {
    const missing = () => {
      throw new MusterError('NOT_FOUND', `the web console is not built (no ${index}): run npm run build`);
    };
    app.get('/console', { schema: { hide: true } }, missing);
    app.get('/console/*', { schema: { hide: true } }, missing);
    return;
  }
  await app.register(fastifyStatic, {
    root: path.join(dir, 'assets'),
    prefix: '/console/assets/',
    decorateReply: false,
    wildcard: false,
    immutable: true,
    maxAge: '365d',
  });
  const page = async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.url.startsWith('/console/assets/'))
      throw new MusterError('NOT_FOUND', `no console asset ${req.url.split('?')[0]}`);
    return (
      reply
        .header('cache-control', 'no-cache')
        // Everything the console loads comes from this server; no page may frame it.
        .header('content-security-policy', CSP)
        .header('x-frame-options', 'DENY')
        .type('text/html; charset=utf-8')
        .send(fs.readFileSync(index))
    );
  };
  app.get('/console', { schema: { hide: true } }, page);
  app.get('/console/*', { schema: { hide: true } }, page);
}
