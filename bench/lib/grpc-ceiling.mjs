import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { track } from './cleanup.mjs';
import { grpcLoad } from './grpc-load.mjs';
import { HOST } from './server.mjs';

const serverFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'grpc-ceiling-server.mjs');

/** Instances in the ceiling's fixed DiscoverResponse (Muster's answer for 10 is 926 bytes). */
export const CEILING_INSTANCES = 4;

/** Runs fn({ address, pid, bytes }) against the bare grpc-js server in a child process. */
export async function withBareGrpcServer(fn) {
  const child = spawn(process.execPath, [serverFile, String(CEILING_INSTANCES)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const untrack = track(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const info = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('the gRPC ceiling server did not start within 20 s')), 20_000);
      child.stdout.on('data', (d) => {
        out += d;
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(JSON.parse(out.slice(0, nl)));
        }
      });
      child.once('exit', (code) => reject(new Error(`the gRPC ceiling server exited (${code})`)));
    });
    return await fn({ address: `${HOST}:${info.port}`, pid: child.pid, bytes: info.bytes });
  } finally {
    child.kill('SIGTERM');
    await exited;
    untrack();
  }
}

/** The same driver and settings as the unary gRPC scenarios, calling Discover on the bare server. */
export function measureGrpcCeiling() {
  return withBareGrpcServer(async ({ address, pid, bytes }) => {
    const r = await grpcLoad({
      address,
      serverPid: pid,
      mode: 'unary',
      method: 'Discover',
      requests: { kind: 'fixed', message: { service: 'ceiling' } },
    });
    return { ...r, answerBytes: bytes };
  });
}
