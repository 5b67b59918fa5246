import http from 'node:http';
import net from 'node:net';

/**
 * A small keep-alive JSON client for setup work and for the scenarios autocannon cannot express
 * (long-polls). node:http rather than fetch: fetch's pool hides how many sockets are open, and
 * the long-poll scenario needs exactly one socket per waiting client.
 */
export function createClient(baseUrl, { maxSockets = 64 } = {}) {
  const base = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });

  function request(method, path, { body, headers = {}, timeoutMs = 120_000, parse = true } = {}) {
    return new Promise((resolve, reject) => {
      const payload =
        body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      const h = { ...headers };
      if (payload) {
        h['content-type'] = 'application/json';
        h['content-length'] = String(payload.length);
      }
      const req = http.request({ host: base.hostname, port: base.port, method, path, headers: h, agent }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const at = performance.now();
          const text = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8');
          let json;
          // parse: false leaves the answer as text, for callers timing many answers that
          // arrive together, where parsing one would delay the timestamp of the next.
          if (parse && text && /json/.test(res.headers['content-type'] ?? '')) {
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json, at });
        });
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  return { request, agent, close: () => agent.destroy() };
}

/** Runs `count` tasks with at most `concurrency` in flight; task(i) answers a promise. */
export async function pool(count, concurrency, task) {
  let next = 0;
  const results = new Array(count);
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

/** Parses Prometheus text into name{labels} -> value (first sample wins for duplicates). */
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([^\s{]+(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m && !out.has(m[1])) out.set(m[1], Number(m[2]));
  }
  return out;
}

export async function scrape(client) {
  const r = await client.request('GET', '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}`);
  return parseMetrics(r.text);
}

/** Average batch size and commit time from the server's own histograms, between two scrapes. */
export function batchStats(before, after) {
  const d = (k) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
  const batches = d('muster_batch_size_count');
  return {
    batches,
    avgSize: batches ? d('muster_batch_size_sum') / batches : 0,
    avgCommitMs: batches ? (d('muster_store_commit_seconds_sum') / batches) * 1000 : 0,
  };
}

/** A distinct IPv4 address per n (n < 2^24), so every registration is a new endpoint. */
export const hostFor = (n) => `10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/**
 * Registers `count` instances of one service as fast as `concurrency` allows and answers
 * [{id, token}]. ttl 60 s (the maximum) keeps them healthy through a scenario without heartbeats.
 */
export async function registerMany(client, service, count, { concurrency = 64, offset = 0, metadata, headers } = {}) {
  return pool(count, concurrency, async (i) => {
    const body = { host: hostFor(offset + i), port: 8080, healthCheck: { ttl: 60 } };
    if (metadata) body.metadata = metadata(offset + i);
    const r = await client.request('POST', `/v1/namespaces/default/services/${service}/instances`, { body, headers });
    if (r.status !== 201 && r.status !== 200) throw new Error(`registration answered ${r.status}: ${r.text}`);
    return { id: r.json.instance.id, token: r.json.heartbeatToken };
  });
}

/**
 * A bare HTTP/1.1 GET client on one kept-alive socket, for timing many answers that arrive at
 * once: `at` is when the first byte of the answer arrived, taken before any parsing, and the
 * per-answer work here is a few string operations instead of node:http's parser and streams.
 * Only what Muster and the bare server send is understood: a Content-Length body, no chunking.
 */
export function rawGetter(baseUrl) {
  const base = new URL(baseUrl);
  const socket = net.connect({ host: base.hostname, port: Number(base.port) });
  socket.setNoDelay(true);
  const ready = new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let pending;
  let buf = '';
  let at = 0;
  socket.setEncoding('latin1');
  socket.on('data', (chunk) => {
    if (!pending) return;
    if (buf === '') at = performance.now();
    buf += chunk;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buf.slice(0, end);
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (buf.length < end + 4 + length) return;
    const p = pending;
    pending = undefined;
    const text = Buffer.from(buf.slice(end + 4, end + 4 + length), 'latin1').toString('utf8');
    buf = '';
    p.resolve({ status: Number(head.slice(9, 12)), text, at });
  });
  socket.on('error', (err) => pending?.reject(err));
  socket.on('close', () => pending?.reject(new Error('connection closed before the answer')));
  return {
    async get(path) {
      await ready;
      if (pending) throw new Error('one request at a time');
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${base.host}\r\n\r\n`);
      });
    },
    close: () => socket.destroy(),
  };
}

/** Heartbeats the server counted as ok, so a 204 that did nothing would still show up. */
export const okHeartbeats = async (client) => (await scrape(client)).get('muster_heartbeats_total{result="ok"}') ?? 0;

/** autocannon requests registering a host never seen before each time: every one a durable insert. */
export function newHostRegistrations() {
  let n = 0;
  return [
    {
      method: 'POST',
      setupRequest(req) {
        req.body = JSON.stringify({ host: hostFor(n++), port: 8080, healthCheck: { ttl: 60 } });
        return req;
      },
    },
  ];
}

/** autocannon requests heartbeating `list` ([{id, token}]) round-robin, one instance per request. */
export function singleHeartbeats(list) {
  let k = 0;
  return [
    {
      method: 'PUT',
      setupRequest(req) {
        const it = list[k++ % list.length];
        req.path = `/v1/instances/${it.id}/heartbeat`;
        req.headers = { ...req.headers, authorization: `Bearer ${it.token}` };
        return req;
      },
    },
  ];
}
