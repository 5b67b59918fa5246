import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MusterError } from '@muster/api';
import { Endpoints } from './endpoints.js';
import type { RegistryApi } from './registry-api.js';

/** A server stand-in for the failover rules only: its one call answers or fails as told. */
function server(address: string): RegistryApi & { down: boolean; calls: number } {
  const s = {
    address,
    down: false,
    calls: 0,
    async discover() {
      s.calls++;
      if (s.down) throw new MusterError('UNAVAILABLE', `${address} is down`);
      return { notModified: true as const, revision: 1 };
    },
  };
  return s as unknown as RegistryApi & { down: boolean; calls: number };
}

const call = (e: Endpoints) =>
  e.call(async (api) => {
    await api.discover('default', 'svc');
    return api.address;
  });

describe('Endpoints: failover between registry servers', () => {
  it('uses the first server, moves to the next on a transient failure, and comes back after the backoff', async () => {
    const a = server('a'),
      b = server('b'),
      c = server('c');
    const switches: string[] = [];
    const e = new Endpoints([a, b, c], {
      backoffBaseMs: 40,
      backoffMaxMs: 40,
      onSwitch: (from, to) => switches.push(`${from}->${to}`),
    });
    assert.equal(await call(e), 'a');
    a.down = true;
    assert.equal(await call(e), 'b', 'the same call is retried on the next server');
    assert.deepEqual(switches, ['a->b']);
    const before = a.calls;
    assert.equal(await call(e), 'b', 'a is skipped while it backs off');
    assert.equal(a.calls, before);
    a.down = false;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await call(e), 'a', 'a is preferred again once its backoff ran out');
  });

  it('does not fail over on answers (invalid input, not found), only on unreachable servers', async () => {
    const a = server('a'),
      b = server('b');
    const e = new Endpoints([a, b], { backoffBaseMs: 1000, backoffMaxMs: 1000 });
    await assert.rejects(
      e.call(async () => {
        throw new MusterError('NOT_FOUND', 'no such service');
      }),
      { code: 'NOT_FOUND' },
    );
    assert.equal(e.current(), a);
  });

  it('tries each server once, then throws the last transient error', async () => {
    const a = server('a'),
      b = server('b');
    a.down = b.down = true;
    const e = new Endpoints([a, b], { backoffBaseMs: 1000, backoffMaxMs: 1000 });
    await assert.rejects(
      call(e),
      (err: unknown) => err instanceof MusterError && err.code === 'UNAVAILABLE' && /b is down/.test(err.message),
    );
    assert.equal(a.calls + b.calls, 2);
  });

  it('refuses an empty server list', () => {
    assert.throws(() => new Endpoints([], { backoffBaseMs: 1, backoffMaxMs: 1 }), {
      code: 'INVALID_ARGUMENT',
      field: 'servers',
    });
  });
});
