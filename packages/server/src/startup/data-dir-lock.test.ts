import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../config/config.js';
import { lockDataDir } from './data-dir-lock.js';

const dir = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'muster-lock-')), 'data');
const lockFile = (d: string) => path.join(d, 'muster.lock');
const writeLock = (d: string, owner: object) => {
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(lockFile(d), JSON.stringify(owner));
};
/** The pid of a process that has ended. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

describe('the data directory lock', () => {
  it('creates the directory and a lock file naming this process; a second lock on it fails naming the directory and the holder', () => {
    const d = dir();
    const lock = lockDataDir(d);
    assert.equal(JSON.parse(fs.readFileSync(lockFile(d), 'utf8')).pid, process.pid);
    assert.equal(fs.statSync(d).mode & 0o777, 0o700);
    assert.throws(
      () => lockDataDir(d),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message.includes(
          `the data directory ${path.resolve(d)} is in use by another Muster server (pid ${process.pid} on ${os.hostname()}`,
        ),
    );
    lock.release();
    assert.ok(!fs.existsSync(lockFile(d)), 'released: the file is gone');
    lockDataDir(d).release();
  });

  it('takes over the lock of a process that is gone, and one left by an earlier process with our own pid', () => {
    const d = dir();
    writeLock(d, { pid: deadPid(), host: os.hostname(), since: '2026-01-01T00:00:00.000Z' });
    const lock = lockDataDir(d);
    assert.equal(JSON.parse(fs.readFileSync(lockFile(d), 'utf8')).pid, process.pid);
    lock.release();
    writeLock(d, { pid: process.pid, host: os.hostname(), since: '2026-01-01T00:00:00.000Z' });
    lockDataDir(d).release();
  });

  it(
    'takes over a lock whose pid now belongs to another process (Linux: the start time differs)',
    { skip: !fs.existsSync('/proc/self/stat') && 'no /proc' },
    () => {
      const d = dir();
      const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      // The parent (the test runner) is alive, but it is not the process that wrote this lock.
      writeLock(d, {
        pid: process.ppid,
        host: os.hostname(),
        since: '2026-01-01T00:00:00.000Z',
        bootId,
        startTicks: '1',
      });
      lockDataDir(d).release();
      // The same, written by the live process itself: held.
      const stat = fs.readFileSync(`/proc/${process.ppid}/stat`, 'utf8');
      const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
      writeLock(d, { pid: process.ppid, host: os.hostname(), since: '2026-01-01T00:00:00.000Z', bootId, startTicks });
      assert.throws(() => lockDataDir(d), /is in use by another Muster server/);
    },
  );

  it('a torn lock file (a crash while it was written) is taken over; a lock of another host is refused and says how to clear it', () => {
    const d = dir();
    writeLock(d, {});
    fs.writeFileSync(lockFile(d), '{"pi');
    fs.utimesSync(lockFile(d), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    lockDataDir(d).release();
    writeLock(d, { pid: 1, host: 'elsewhere.example', since: '2026-01-01T00:00:00.000Z' });
    assert.throws(
      () => lockDataDir(d),
      (e: unknown) =>
        e instanceof ConfigError &&
        /\(pid 1 on elsewhere\.example, since 2026-01-01T00:00:00\.000Z\)/.test(e.message) &&
        e.message.endsWith(`if that server is gone, remove ${lockFile(path.resolve(d))}`),
    );
  });
});
