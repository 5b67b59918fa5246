import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import { api, bearer, startServer } from './harness.js';

/**
 * The per-address write limit against a client that rotates its address: every loopback address
 * is this host, an IPv6 /64 is one client, and behind a trusted proxy the client is the one
 * X-Forwarded-For names, not the proxy.
 */

const REGISTER = '/v1/namespaces/default/services/orders/instances';

/** POST a registration from a given local address (and with given headers); answers the status. */
function registerFrom(
  url: string,
  port: number,
  headers: Record<string, string> = {},
  localAddress?: string,
): Promise<number> {
  const body = JSON.stringify({ host: '10.0.0.1', port });
  return new Promise((resolve, reject) => {
    const req = http.request(
      url + REGISTER,
      {
        method: 'POST',
        agent: false,
        ...(localAddress ? { localAddress } : {}),
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** Sends `n` registrations at once; answers their statuses and how many one-second windows they may have spanned. */
async function burst(
  n: number,
  send: (i: number) => Promise<number>,
): Promise<{ statuses: number[]; windows: number }> {
  const t0 = Date.now();
  const statuses = await Promise.all(Array.from({ length: n }, (_, i) => send(i)));
  return { statuses, windows: Math.ceil((Date.now() - t0) / 1000) + 1 };
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

describe('per-address write limits against rotating addresses', () => {
  it('rotating the source address over 127.0.0.2-21 stays one client: past 5 writes/s the answers are 429', async () => {
    const s = await startServer({ 'limits.writesPerAddress': 5 });
    try {
      const { statuses, windows } = await burst(20, (i) => registerFrom(s.url, 1000 + i, {}, `127.0.0.${2 + i}`));
      assert.ok(count(statuses, 429) > 0, `no write was limited: ${statuses.join(' ')}`);
      assert.ok(count(statuses, 201) <= 5 * windows, `${count(statuses, 201)} writes passed in ${windows} windows`);
    } finally {
      await s.stop();
    }
  });

  it('behind a trusted proxy: the client of X-Forwarded-For is counted, an IPv6 /64 as one, and registrations need a token', async () => {
    const s = await startServer({ 'auth.enabled': true, 'http.trustProxy': '127.0.0.1', 'limits.writesPerAddress': 5 });
    try {
      const admin = fs.readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim();
      // Listening on loopback no longer means "only this host calls": the proxy forwards others.
      const anonymous = await api(
        s.url,
        'POST',
        REGISTER,
        { host: '10.0.0.1', port: 80 },
        { 'x-forwarded-for': '203.0.113.7' },
      );
      assert.equal(anonymous.status, 401);
      const writer = (
        await api(s.url, 'POST', '/v1/tokens', { name: 'writer', rules: ['write:default/*'] }, bearer(admin))
      ).body.secret as string;
      // Twenty addresses of one /64: one client.
      const sameNet = await burst(20, (i) =>
        registerFrom(s.url, 2000 + i, {
          ...bearer(writer),
          'x-forwarded-for': `2001:db8:1:2::${(i + 1).toString(16)}`,
        }),
      );
      assert.ok(count(sameNet.statuses, 429) > 0, `no write was limited: ${sameNet.statuses.join(' ')}`);
      assert.ok(count(sameNet.statuses, 201) <= 5 * sameNet.windows);
      // Twenty /64s: twenty clients, none of them over its limit.
      const spread = await burst(20, (i) =>
        registerFrom(s.url, 3000 + i, {
          ...bearer(writer),
          'x-forwarded-for': `2001:db8:1:${(i + 16).toString(16)}::1`,
        }),
      );
      assert.deepEqual(spread.statuses, Array(20).fill(201));
    } finally {
      await s.stop();
    }
  });

  it('limits.ipv6Prefix sets how much of an IPv6 address is one client', async () => {
    const s = await startServer({
      'http.trustProxy': '127.0.0.1',
      insecure: true,
      'limits.writesPerAddress': 5,
      'limits.ipv6Prefix': 48,
    });
    try {
      const { statuses, windows } = await burst(20, (i) =>
        registerFrom(s.url, 4000 + i, { 'x-forwarded-for': `2001:db8:1:${(i + 1).toString(16)}::1` }),
      );
      assert.ok(count(statuses, 429) > 0, `no write was limited: ${statuses.join(' ')}`);
      assert.ok(count(statuses, 201) <= 5 * windows);
    } finally {
      await s.stop();
    }
  });
});
