import { execFile } from 'node:child_process';
import path from 'node:path';
import { musterBin } from './harness.js';

export const repoRoot = path.resolve(path.dirname(musterBin), '..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The child's environment without the caller's MUSTER_* settings: each test says what it means. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MUSTER_')));
  return { ...env, ...extra };
}

/** Runs `muster ...` as a child process. Async: the server under test may live in this process. */
export function muster(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [musterBin, ...args], { cwd: repoRoot, env: cleanEnv(env), timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
