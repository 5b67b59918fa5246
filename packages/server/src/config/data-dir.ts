import fs from 'node:fs';
import path from 'node:path';

/**
 * The data directory holds what must stay private to the server's own user: the SQLite file
 * (services' verification secrets in clear, instances' token hashes) and the admin token. It is
 * created 0700 and its files 0600, whatever the umask says; a directory or file found wider is
 * left as it is (an operator may have reasons) but warned about at every start.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates the directory (and missing parents) with mode 0700; an existing one keeps its mode. */
export function makePrivateDir(dir: string): void {
  if (fs.existsSync(dir)) return;
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode passes through the umask, which can only narrow it; this makes it exact.
  fs.chmodSync(dir, PRIVATE_DIR_MODE);
}

/**
 * Creates an empty file with mode 0600 unless it exists. SQLite gives its -wal and -shm files
 * the mode of the database file, so creating that one first keeps all three private.
 */
export function touchPrivateFile(file: string): void {
  makePrivateDir(path.dirname(file));
  try {
    fs.closeSync(
      fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, PRIVATE_FILE_MODE),
    );
    fs.chmodSync(file, PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

export interface WideEntry {
  path: string;
  /** e.g. '0644' */
  mode: string;
  expected: string;
}

/**
 * The files given (those that exist) and their directory that other users may read, write or
 * enter; a directory that holds none of them is not judged.
 */
export function widerThanPrivate(dir: string, files: readonly string[]): WideEntry[] {
  const modeOf = (p: string): number | undefined => {
    try {
      return fs.statSync(p).mode & 0o777;
    } catch {
      return undefined;
    }
  };
  const out: WideEntry[] = [];
  let held = false;
  for (const f of files) {
    const p = path.join(dir, f);
    const mode = modeOf(p);
    if (mode === undefined) continue;
    held = true;
    if ((mode & 0o077) !== 0) out.push({ path: p, mode: octal(mode), expected: octal(PRIVATE_FILE_MODE) });
  }
  const dirMode = held ? modeOf(dir) : undefined;
  if (dirMode !== undefined && (dirMode & 0o077) !== 0)
    out.unshift({ path: dir, mode: octal(dirMode), expected: octal(PRIVATE_DIR_MODE) });
  return out;
}

const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;
