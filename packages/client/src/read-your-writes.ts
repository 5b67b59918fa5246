import { MIN_REVISION_FIELD, MusterError } from '@muster/api';

/**
 * Read-your-writes for a client (see docs/sdk.md): the newest revision its own writes committed.
 * Every later call carries it, so whichever node of a cluster answers has applied those writes
 * first. One is shared by every server address of a MusterClient; give one to several
 * MusterHttpClients to read through one node what was written through another.
 */
export class ReadYourWrites {
  private value: number;

  constructor(revision = 0) {
    this.value = Number.isSafeInteger(revision) && revision > 0 ? revision : 0;
  }

  /** The revision calls carry; undefined before the first write. */
  get revision(): number | undefined {
    return this.value > 0 ? this.value : undefined;
  }

  /** A write answered this revision. */
  wrote(revision: number | string | null | undefined): void {
    const n = Number(revision);
    if (Number.isSafeInteger(n) && n > this.value) this.value = n;
  }

  /**
   * Runs `call` with the revision; when the registry answers that it never committed it (another
   * registry, or one whose store was reset), forgets it and runs `call` once more without.
   */
  async carry<T>(call: (revision: number | undefined) => Promise<T>): Promise<T> {
    const revision = this.revision;
    try {
      return await call(revision);
    } catch (err) {
      if (revision === undefined || !isUnknownRevision(err)) throw err;
      if (this.value === revision) this.value = 0;
      return call(this.revision);
    }
  }
}

function isUnknownRevision(err: unknown): boolean {
  return err instanceof MusterError && err.code === 'FAILED_PRECONDITION' && err.field === MIN_REVISION_FIELD;
}
