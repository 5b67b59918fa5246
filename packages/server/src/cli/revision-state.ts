import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReadYourWrites } from '@muster/client';

/** How long the revision of a command's write is carried by the commands after it. */
const KEEP_MS = 10 * 60_000;

/**
 * Read-your-writes across commands. Each `muster` command is a process of its own, so the
 * revision its write answered is kept in $XDG_STATE_HOME/muster/revision.json (by default
 * ~/.local/state/muster/), and the commands of the next ten minutes carry it: `muster deregister`
 * through one node, then `muster instances ls` through another, never shows the instance. A
 * registry that never committed that revision (another registry, a store that was reset) says
 * so, and the command forgets it and asks again without it.
 */
let session: ReadYourWrites | undefined;
let loaded = 0;

function file(): string {
  const state = process.env['XDG_STATE_HOME'] || path.join(os.homedir(), '.local', 'state');
  return path.join(state, 'muster', 'revision.json');
}

/** The revision this command carries, read once from the state file. */
export function cliSession(): ReadYourWrites {
  if (!session) {
    try {
      const { revision, at } = JSON.parse(fs.readFileSync(file(), 'utf8')) as { revision?: unknown; at?: unknown };
      if (typeof revision === 'number' && typeof at === 'number' && Date.now() - at < KEEP_MS) loaded = revision;
    } catch {
      // None yet, or unreadable: nothing to carry.
    }
    session = new ReadYourWrites(loaded);
  }
  return session;
}

/** Keeps the revision the command ended with for the next ones. Best effort: a command never fails on it. */
export function saveCliSession(): void {
  const revision = session?.revision ?? 0;
  if (!session || revision === loaded) return;
  const f = file();
  try {
    fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
    const tmp = `${f}.${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify({ revision, at: Date.now() }), { mode: 0o600 });
    fs.renameSync(tmp, f);
    loaded = revision;
  } catch {
    // A read-only home: commands after this one just do not wait for this write.
  }
}
