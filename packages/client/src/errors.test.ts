import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MusterError } from '@muster/api';
import { errorFromAnswer, errorFromFailure } from './error-mapping.js';
import * as errors from './errors.js';

describe('the SDK error catalogue', () => {
  const cause = new Error('underneath');
  const made: Array<[MusterError, string, string]> = [
    [
      new errors.InvalidOptionError('tls.ca', 'tls.ca is not a PEM certificate', cause),
      'InvalidOptionError',
      'INVALID_ARGUMENT',
    ],
    [new errors.ServerUnreachableError('GET x: connect ECONNREFUSED', cause), 'ServerUnreachableError', 'UNAVAILABLE'],
    [new errors.NoServerReachableError(), 'NoServerReachableError', 'UNAVAILABLE'],
    [new errors.RequestTimeoutError('GET x: no answer in time', cause), 'RequestTimeoutError', 'DEADLINE_EXCEEDED'],
    [new errors.HttpStatusError(502, 'Bad Gateway', '<html>'), 'HttpStatusError', 'UNAVAILABLE'],
    [new errors.GrpcChannelError('UNAVAILABLE', 'Watch a: 14', cause), 'GrpcChannelError', 'UNAVAILABLE'],
    [new errors.NotJsonAnswerError('GET x', cause), 'NotJsonAnswerError', 'UNAVAILABLE'],
    [new errors.StreamEndedError('the server ended the heartbeat stream'), 'StreamEndedError', 'UNAVAILABLE'],
    [
      new errors.MalformedStreamError('the server sent a snapshot that is not JSON', cause),
      'MalformedStreamError',
      'INTERNAL',
    ],
    [new errors.SnapshotHandlerError(cause), 'SnapshotHandlerError', 'INTERNAL'],
    [new errors.NoInstanceError('orders'), 'NoInstanceError', 'UNAVAILABLE'],
    [new errors.ClientClosedError(), 'ClientClosedError', 'FAILED_PRECONDITION'],
    [new errors.VerificationNotListeningError(), 'VerificationNotListeningError', 'FAILED_PRECONDITION'],
    [new errors.HeartbeatFailedError('heartbeat failed: no reason given'), 'HeartbeatFailedError', 'INTERNAL'],
    [new errors.DiskCacheError(cause), 'DiskCacheError', 'INTERNAL'],
    [
      new errors.WatchFallbackError('orders', new MusterError('UNAVAILABLE', 'down')),
      'WatchFallbackError',
      'UNAVAILABLE',
    ],
    [new errors.UnexpectedError(cause), 'UnexpectedError', 'INTERNAL'],
  ];

  it('each kind is a MusterError with a name of its own and its code', () => {
    for (const [e, name, code] of made) {
      assert.ok(e instanceof MusterError && e instanceof Error, name);
      assert.equal(e.name, name);
      assert.equal(e.code, code, name);
      assert.equal(String(e).split(':')[0], name, 'the name leads the text of the error');
    }
    assert.equal(new Set(made.map(([, name]) => name)).size, made.length);
  });

  it('keeps the cause and the field, and builds the messages callers and tests read', () => {
    const e = new errors.InvalidOptionError('tls.ca', 'tls.ca is not a PEM certificate', cause);
    assert.equal(e.cause, cause);
    assert.equal(e.field, 'tls.ca');
    assert.equal(new errors.SnapshotHandlerError(cause).message, 'the snapshot handler threw: underneath');
    assert.equal(new errors.NoInstanceError('orders').message, 'service "orders" has no instance to call');
    assert.equal(new errors.NoInstanceError('orders').field, 'service');
    const fallback = new errors.WatchFallbackError('orders', new MusterError('INTERNAL', 'boom'));
    assert.equal(fallback.message, 'watching orders keeps failing (boom); long-polling instead');
    assert.equal(fallback.code, 'INTERNAL', 'the code of the failure it reports');
    assert.equal(new errors.HttpStatusError(429, '', ' slow down ').message, 'HTTP 429: slow down');
  });

  it('a MusterError passes asMusterError as it is; anything else becomes an UnexpectedError', () => {
    const own = new MusterError('NOT_FOUND', 'gone');
    assert.equal(errors.asMusterError(own), own);
    const wrapped = errors.asMusterError('a string');
    assert.ok(wrapped instanceof errors.UnexpectedError);
    assert.equal(wrapped.message, 'a string');
  });

  it("maps answers and failures: the server's own error as a MusterError, else a kind from the catalogue", () => {
    const server = errorFromAnswer(
      404,
      'Not Found',
      JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such service', field: 'service' } }),
    );
    assert.equal(server.name, 'MusterError');
    assert.equal(server.code, 'NOT_FOUND');
    assert.equal(server.field, 'service');
    const proxy = errorFromAnswer(503, 'Service Unavailable', 'upstream down');
    assert.ok(proxy instanceof errors.HttpStatusError);
    assert.equal(proxy.message, 'HTTP 503 Service Unavailable: upstream down');
    const timeout = Object.assign(new Error('aborted'), { name: 'TimeoutError' });
    assert.ok(errorFromFailure(timeout, 'GET /x') instanceof errors.RequestTimeoutError);
    const refused = errorFromFailure(
      new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      }),
      'GET /x',
    );
    assert.ok(refused instanceof errors.ServerUnreachableError);
    assert.equal(refused.message, 'GET /x: connect ECONNREFUSED');
  });
});
