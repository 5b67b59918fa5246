import fs from 'node:fs';
import path from 'node:path';
import { startServer, tempDir, type Flags } from './harness.js';

/**
 * A server with auth on, as by default, and its admin token: the one it announced at first start,
 * or the one its data directory keeps when it starts again on it.
 */
export async function startAuthServer(flags: Flags = {}, dataDir = tempDir()) {
  let announced = '';
  const server = await startServer({ 'auth.enabled': true, ...flags }, dataDir, (t) => (announced += t));
  const admin = /(mst_\S+)/.exec(announced)?.[1] ?? fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  return { ...server, admin };
}
