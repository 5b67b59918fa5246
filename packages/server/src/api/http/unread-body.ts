import type { IncomingMessage } from 'node:http';

/** At most this much of a refused request's body is read (and dropped) before its answer... */
const DRAIN_MAX_BYTES = 16 * 1024 * 1024;
/** ...and for at most this long: a client sending slowly does not hold the connection. */
const DRAIN_MAX_MS = 10_000;

/** Whether the request announced a body that has not been read to its end. */
export function hasUnreadBody(raw: IncomingMessage): boolean {
  if (raw.complete) return false;
  const length = raw.headers['content-length'];
  return (length !== undefined && length !== '0') || raw.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads and drops what is left of a request's body, up to a bound. A request refused before its
 * body was read (too large, no credentials) is answered only after this: closing the connection
 * while the client is still sending makes many clients (Node's fetch among them) report a broken
 * pipe instead of the answer. Resolves true when the body was read to its end, false when a
 * bound stopped it (the connection is then closed after the answer).
 */
export function drainBody(raw: IncomingMessage): Promise<boolean> {
  return new Promise((resolve) => {
    let read = 0;
    const finish = (whole: boolean) => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('error', onEnd);
      raw.off('close', onClose);
      if (!whole) raw.pause();
      resolve(whole);
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > DRAIN_MAX_BYTES) finish(false);
    };
    const onEnd = () => finish(raw.complete);
    const onClose = () => finish(false);
    const timer = setTimeout(() => finish(false), DRAIN_MAX_MS);
    raw.on('data', onData);
    raw.once('end', onEnd);
    raw.once('error', onEnd);
    raw.once('close', onClose);
    raw.resume();
  });
}
