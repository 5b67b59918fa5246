import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MusterError } from '@muster/api';
import { MusterHttpClient } from './http-client.js';
import { MusterClient } from './sdk/muster-client.js';
import { tlsHint } from './tls.js';

const PEM = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';

function refused(fn: () => unknown, field: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MusterError, String(err));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.field, field);
    assert.match(err.message, message);
    return true;
  });
}

describe('TLS options of the SDK', () => {
  it('refuses half a client certificate, naming the missing half', () => {
    refused(
      () => new MusterHttpClient({ server: 'https://127.0.0.1:1', tls: { cert: PEM } }),
      'tls.key',
      /tls\.cert is set but tls\.key is not/,
    );
    refused(
      () => new MusterClient({ servers: ['127.0.0.1:1'], tls: { key: PEM } }),
      'tls.cert',
      /tls\.key is set but tls\.cert is not/,
    );
  });

  it('refuses tls settings for a server that says plain text, instead of dropping them', () => {
    refused(() => new MusterHttpClient({ server: 'http://127.0.0.1:1', tls: {} }), 'server', /not an https:\/\/ URL/);
    refused(
      () => new MusterClient({ transport: 'http', servers: ['http://127.0.0.1:1'], tls: {} }),
      'server',
      /not an https:\/\/ URL/,
    );
    refused(
      () => new MusterClient({ servers: ['grpc://127.0.0.1:1'], tls: {} }),
      'servers',
      /grpc:\/\/ \(plain text\)/,
    );
  });

  it('refuses text that is not PEM, naming the field', () => {
    refused(
      () => new MusterHttpClient({ server: 'https://127.0.0.1:1', tls: { ca: PEM } }),
      'tls.ca',
      /tls\.ca is not a PEM certificate/,
    );
    refused(
      () => new MusterClient({ servers: ['127.0.0.1:1'], tls: { cert: PEM, key: 'no key' } }),
      'tls.cert',
      /tls\.cert and tls\.key are not a PEM certificate and its private key/,
    );
  });

  it('names the setting that fixes a TLS failure', () => {
    assert.match(tlsHint('SELF_SIGNED_CERT_IN_CHAIN')!, /tls\.ca; muster --ca/);
    assert.match(tlsHint('UNABLE_TO_VERIFY_LEAF_SIGNATURE')!, /tls\.ca/);
    assert.match(tlsHint('ERR_TLS_CERT_ALTNAME_INVALID')!, /host name/);
    assert.match(tlsHint('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')!, /tls\.cert and tls\.key/);
    assert.match(tlsHint('ERR_SSL_WRONG_VERSION_NUMBER')!, /http:\/\//);
    assert.equal(tlsHint('ECONNREFUSED'), undefined);
    assert.equal(tlsHint(undefined), undefined);
  });
});
