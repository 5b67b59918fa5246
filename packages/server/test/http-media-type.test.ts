import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, startServer, type RunningServer } from './harness.js';

describe('HTTP: a body that is not JSON', () => {
  let server: RunningServer;
  before(async () => void (server = await startServer()));
  after(() => server.stop());

  // Fastify 5's error no longer names the type; the answer must still say which one was refused.
  it('answers 415 naming the content type that was sent', async () => {
    const r = await api(server.url, 'POST', '/v1/namespaces', 'name=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(r.status, 415);
    assert.equal(r.body.error.code, 'INVALID_ARGUMENT');
    assert.equal(r.body.error.field, 'body');
    assert.match(
      r.body.error.message,
      /content type "application\/x-www-form-urlencoded" is not supported; send application\/json/,
    );
  });
});
