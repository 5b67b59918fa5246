import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../config/config.js';
import { makePrivateDir } from '../config/data-dir.js';

/** Who holds a data directory: what the lock file says. */
interface Owner {
  pid: number;
  host: string;
  since: string;
  /** Linux: the boot and the process's start time, so a pid reused after a restart is not taken for the holder. */
  bootId?: string;
  startTicks?: string;
}

export interface DataDirLock {
  readonly file: string;
  release(): void;
}

const LOCK_FILE = 'muster.lock';
/** Lock files this process holds: a file naming our own pid and not in here is a leftover of a previous process that had our pid. */
const held = new Set<string>();

/**
 * Takes the data directory for this process: two servers on one SQLite directory would each
 * serve only their own registrations. The lock is a file holding the owner's pid, created
 * exclusively; a lock whose process is gone is taken over. Fails with a ConfigError naming the
 * directory and the other process while that one runs.
 */
export function lockDataDir(dir: string): DataDirLock {
  const abs = path.resolve(dir);
  const file = path.join(abs, LOCK_FILE);
  makePrivateDir(abs);
  const me = JSON.stringify(self());
  // Each round either takes the lock, fails on a live owner, or moves a stale lock aside; a
  // few rounds cover other processes doing the same at the same moment.
  for (let round = 0; round < 5; round++) {
    try {
      fs.writeFileSync(file, `${me}\n`, { flag: 'wx', mode: 0o600 });
      held.add(file);
      return { file, release: () => release(file) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new ConfigError(`cannot lock the data directory ${abs}: ${(err as Error).message}`);
    }
    const text = readOr(file);
    if (text === undefined) continue; // released meanwhile
    const owner = parse(text);
    if (!owner && justWritten(file)) {
      // Created by a server starting this very moment, its content not written yet.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      continue;
    }
    if (owner && alive(owner, file)) {
      throw new ConfigError(
        `the data directory ${abs} is in use by another Muster server (pid ${owner.pid} on ${owner.host}, since ${owner.since}): ` +
          'two servers on one directory would each see only their own registrations. Stop that server, or give this one another --data-dir' +
          (owner.host === os.hostname() ? '' : `; if that server is gone, remove ${file}`),
      );
    }
    // A lock nobody holds any more (or a torn one, from a crash while it was written).
    // Renamed aside, not deleted, so that of two servers taking it over at once only one
    // removes it; one that renamed a fresh lock instead puts it back.
    const aside = `${file}.${process.pid}.stale`;
    try {
      fs.renameSync(file, aside);
    } catch {
      continue; // another process took it over first
    }
    if (readOr(aside) !== text) {
      try {
        fs.linkSync(aside, file);
      } catch {
        // a third process holds the name now: the next round reads it
      }
    }
    fs.rmSync(aside, { force: true });
  }
  throw new ConfigError(
    `cannot lock the data directory ${abs}: ${file} keeps changing (several servers starting on it at once?)`,
  );
}

function release(file: string): void {
  if (!held.delete(file)) return;
  // Only our own lock: never remove one another process took over.
  const owner = parse(readOr(file) ?? '');
  if (owner?.pid === process.pid && owner.host === os.hostname()) fs.rmSync(file, { force: true });
}

function self(): Owner {
  const o: Owner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
  const proc = linuxProcess(process.pid);
  if (proc) Object.assign(o, proc);
  return o;
}

/** Whether the owner named in the lock still runs. On another host it cannot be told: assumed to. */
function alive(o: Owner, file: string): boolean {
  if (o.host !== os.hostname()) return true;
  if (o.pid === process.pid) return held.has(file);
  const now = linuxProcess(o.pid);
  if (
    o.bootId !== undefined &&
    o.startTicks !== undefined &&
    (now === undefined || now.bootId !== o.bootId || now.startTicks !== o.startTicks)
  ) {
    // Linux tells exactly: gone, or its pid belongs to another process now.
    return false;
  }
  try {
    process.kill(o.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** The boot id and a process's start time (in clock ticks after boot), on Linux; undefined elsewhere or when the process is gone. */
function linuxProcess(pid: number): { bootId: string; startTicks: string } | undefined {
  try {
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return startTicks === undefined ? undefined : { bootId, startTicks };
  } catch {
    return undefined;
  }
}

function justWritten(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs < 2000;
  } catch {
    return false;
  }
}

function readOr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function parse(text: string): Owner | undefined {
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? ({ since: '?', ...o } as Owner) : undefined;
  } catch {
    return undefined;
  }
}
