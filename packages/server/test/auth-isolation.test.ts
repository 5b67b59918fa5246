import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { api, bearer, startServer, type RunningServer } from './harness.js';
import { call, registryClient, rejectsWith, type RegistryClient } from './grpc-client.js';

const REG = '/v1/namespaces/default/services/pay/instances';

/**
 * Isolation is an operator's decision (PATCH refuses an instance's own token for it). Found by
 * fuzzing: a re-registration with the instance's own heartbeatToken and "isolate": false put an
 * instance an operator had isolated back into traffic.
 */
describe('isolation through re-registration, auth on', () => {
  let s: RunningServer;
  let admin = '';
  let grpcClient: RegistryClient;
  before(async () => {
    s = await startServer({ 'auth.enabled': true, 'auth.clients': 'open' });
    admin = fs.readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim();
    grpcClient = registryClient(s.grpcAddress);
  });
  after(async () => {
    grpcClient.close();
    await s.stop();
  });

  it("the owner cannot undo an operator's isolation, over HTTP or gRPC; leaving isolate out keeps it", async () => {
    const r = await api(s.url, 'POST', REG, { host: '10.7.0.1', port: 80 });
    const { id } = r.body.instance;
    const own = bearer(r.body.heartbeatToken);
    assert.equal(
      (await api(s.url, 'PATCH', `/v1/instances/${id}`, { isolate: true }, bearer(admin))).body.isolate,
      true,
    );

    const refused = await api(s.url, 'POST', REG, { host: '10.7.0.1', port: 80, isolate: false }, own);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.deepEqual([refused.body.error.code, refused.body.error.field], ['PERMISSION_DENIED', 'isolate']);
    await rejectsWith(
      call(grpcClient, 'Register', {
        service: 'pay',
        host: '10.7.0.1',
        port: 80,
        isolate: false,
        heartbeatToken: r.body.heartbeatToken,
      }),
      grpc.status.PERMISSION_DENIED,
      'isolate',
      'gRPC',
    );
    assert.equal(
      (await api(s.url, 'GET', `/v1/instances/${id}`, undefined, bearer(admin))).body.isolate,
      true,
      'still isolated',
    );

    const kept = await api(s.url, 'POST', REG, { host: '10.7.0.1', port: 80, isolate: true }, own);
    assert.deepEqual([kept.status, kept.body.instance.isolate], [200, true], 'restating it is no change');
    const silent = await api(s.url, 'POST', REG, { host: '10.7.0.1', port: 80, weight: 5 }, own);
    assert.deepEqual([silent.status, silent.body.instance.isolate, silent.body.instance.weight], [200, true, 5]);

    const operator = await api(s.url, 'POST', REG, { host: '10.7.0.1', port: 80, isolate: false }, bearer(admin));
    assert.deepEqual([operator.status, operator.body.instance.isolate], [200, false], 'a token with write may');
  });

  it('a new instance may register itself isolated', async () => {
    const r = await api(s.url, 'POST', REG, { host: '10.7.0.2', port: 80, isolate: true });
    assert.deepEqual([r.status, r.body.instance.isolate], [201, true]);
  });
});

describe('isolation through re-registration, auth off', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.stop());

  it('nothing is checked: the owner may set it', async () => {
    const r = await api(s.url, 'POST', REG, { host: '10.7.1.1', port: 80, isolate: true });
    const again = await api(
      s.url,
      'POST',
      REG,
      { host: '10.7.1.1', port: 80, isolate: false },
      bearer(r.body.heartbeatToken),
    );
    assert.deepEqual([again.status, again.body.instance.isolate], [200, false]);
  });
});
