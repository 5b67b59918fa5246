import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cannon } from './lib/cannon.mjs';
import { track } from './lib/cleanup.mjs';
import { HOST, freePort, sleep } from './lib/server.mjs';

const serverFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ceiling-server.mjs');

/** Runs fn({ url, pid }) against a bare node:http server in a child process. */
export async function withBareServer(fn) {
  const port = await freePort();
  const child = spawn(process.execPath, [serverFile, String(port)], { stdio: ['ignore', 'inherit', 'inherit'] });
  const untrack = track(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `http://${HOST}:${port}`;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(url)).status === 200) break;
      } catch {
        if (i > 200) throw new Error('the ceiling server did not start');
        await sleep(25);
      }
    }
    return await fn({ url, pid: child.pid });
  } finally {
    child.kill('SIGTERM');
    await exited;
    untrack();
  }
}

/** Measures the bare node:http server with the same autocannon settings as the scenarios. */
export function measureCeiling() {
  return withBareServer(({ url, pid }) => cannon({ url, pid }));
}
