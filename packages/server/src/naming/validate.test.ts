import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MusterError } from '../errors.js';
import {
  validateInstancePatch,
  validateNamespaceInput,
  validateRegistration,
  validateServiceInput,
} from './validate.js';

const refused = (fn: () => unknown, field: string) =>
  assert.throws(
    fn,
    (e: unknown) =>
      e instanceof MusterError &&
      e.code === 'INVALID_ARGUMENT' &&
      e.field === field &&
      /lone surrogate/.test(e.message),
    field,
  );

describe('validate: text must be valid Unicode (found by fuzz-http)', () => {
  // JSON lets a client send "\ud800"; SQLite and MySQL store UTF-8, where it turns into U+FFFD,
  // so the registry served one value until a restart and another after it.
  it('refuses a lone surrogate in every free-text field of a registration', () => {
    const reg = (over: object) => () => validateRegistration({ host: '10.0.0.1', port: 80, ...over });
    refused(reg({ protocol: 'h\ud800' }), 'protocol');
    refused(reg({ version: '\udfff' }), 'version');
    refused(reg({ metadata: { env: 'a\ud83d' } }), 'metadata.env');
    refused(reg({ metadata: { '\ud800': 'v' } }), 'metadata.\ud800');
    refused(reg({ location: { zone: '\ud800x' } }), 'location.zone');
  });

  it('refuses it in patches, services and namespaces too', () => {
    refused(() => validateInstancePatch({ metadata: { k: '\ud800' } }), 'metadata.k');
    refused(() => validateServiceInput({ name: 's', comment: '\ud800' }, true), 'comment');
    refused(() => validateServiceInput({ metadata: { k: '\udc00' } }, false), 'metadata.k');
    refused(() => validateNamespaceInput({ name: 'n', comment: 'x\udbff' }), 'comment');
  });

  it('takes any well-formed text, surrogate pairs included', () => {
    const v = validateRegistration({
      host: '10.0.0.1',
      port: 80,
      protocol: '🔑',
      metadata: { ключ: '𝕏 é\u0000' },
      location: { region: '東京' },
    });
    assert.deepEqual([v.protocol, v.metadata, v.location], ['🔑', { ключ: '𝕏 é\u0000' }, { region: '東京' }]);
  });
});

describe('validate: metadata keys (found by fuzz-grpc)', () => {
  // A gRPC map decodes `__proto__` as an own key; `out[k] = v` then set nothing, and the
  // registration was answered OK without the key it was sent.
  it('refuses the key __proto__ instead of dropping it', () => {
    const metadata = JSON.parse('{"env":"prod","__proto__":"x"}') as Record<string, string>;
    assert.throws(
      () => validateRegistration({ host: '10.0.0.1', port: 80, metadata }),
      (e: unknown) => e instanceof MusterError && e.field === 'metadata.__proto__',
    );
    assert.throws(
      () => validateInstancePatch({ metadata }),
      (e: unknown) => e instanceof MusterError && e.field === 'metadata.__proto__',
    );
  });

  it("keeps keys that only look like Object's own, as data", () => {
    const v = validateRegistration({
      host: '10.0.0.1',
      port: 80,
      metadata: { constructor: 'a', toString: 'b', hasOwnProperty: 'c' },
    });
    // In key order, as the stores read metadata back.
    assert.deepEqual(Object.entries(v.metadata), [
      ['constructor', 'a'],
      ['hasOwnProperty', 'c'],
      ['toString', 'b'],
    ]);
  });
});
