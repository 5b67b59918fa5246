import type { FastifyRequest } from 'fastify';
import { LIMITS } from '@muster/api';
import { parseGoDuration } from './consul-duration.js';
import { ConsulErrors } from './consul-errors.js';

/** Consul's wait when a blocking query names none. */
const DEFAULT_WAIT_MS = 5 * 60_000;

/** A blocking query: the index the client holds and how long it may wait for a change. */
export interface Blocking {
  /** Undefined: not a blocking query, answered at once. */
  index: number | undefined;
  waitMs: number;
}

const parsed = new WeakMap<FastifyRequest, Blocking>();

/**
 * `?index=N&wait=…` of a read, decoded once per request (the pipeline's park and the handler
 * both ask). The wait is at most Muster's long-poll bound, plus Consul's jitter (up to wait/16)
 * so that clients woken together do not come back together.
 */
export function blockingOf(req: FastifyRequest): Blocking {
  const known = parsed.get(req);
  if (known) return known;
  const q = req.query as Record<string, unknown>;
  let index: number | undefined;
  if (q['index'] !== undefined) {
    const raw = q['index'];
    if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) throw ConsulErrors.badIndex(String(raw));
    index = Number(raw);
  }
  const asked = q['wait'] === undefined ? DEFAULT_WAIT_MS : parseGoDuration('wait', q['wait']);
  const wait = Math.min(asked, LIMITS.longPollMaxSeconds * 1000);
  const b: Blocking = {
    index: index === 0 ? undefined : index,
    waitMs: index === undefined ? 0 : wait + Math.floor(Math.random() * (wait / 16)),
  };
  parsed.set(req, b);
  return b;
}

/** X-Consul-Index from a Muster revision: Consul's clients take 0 as no index at all. */
export const consulIndex = (revision: number): string => String(Math.max(1, revision));

/** How often a blocking read of the whole catalog looks for a change. */
const CATALOG_POLL_MS = 100;

/**
 * A blocking query on a read of the whole catalog (`/v1/catalog/services`, the agent's reads):
 * the pipeline's long-poll parks on one service, so this waits for this node's revision to move
 * past `index`, looking every CATALOG_POLL_MS, until the wait ends or the client goes.
 */
export async function waitForRevision(req: FastifyRequest, current: () => number): Promise<void> {
  const { index, waitMs } = blockingOf(req);
  if (index === undefined || waitMs === 0 || current() > index) return;
  const deadline = Date.now() + waitMs;
  let gone = false;
  const onClose = () => (gone = true);
  req.raw.once('close', onClose);
  try {
    while (!gone && current() <= index && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, Math.min(CATALOG_POLL_MS, Math.max(0, deadline - Date.now()))));
  } finally {
    req.raw.off('close', onClose);
  }
}
