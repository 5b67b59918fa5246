import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstanceRecord, ServiceRecord } from '../model/records.js';
import { RegistryIndex } from './registry-index.js';

const T = 1_000_000;

const service = (revision: number): ServiceRecord => ({
  namespace: 'ns',
  name: 'svc',
  metadata: {},
  comment: '',
  revision,
  createdAt: T,
  updatedAt: T,
  verification: null,
});

const instance = (id: string, over: Partial<InstanceRecord> = {}): InstanceRecord => ({
  id,
  namespace: 'ns',
  service: 'svc',
  host: '10.0.0.1',
  port: 8080,
  protocol: 'http',
  version: '1.0',
  weight: 100,
  priority: 0,
  metadata: {},
  location: {},
  ttl: 5,
  healthy: true,
  isolate: false,
  lastHeartbeat: T,
  healthChangedAt: T,
  revision: 1,
  createdAt: T,
  updatedAt: T,
  tokenHash: 'ab'.repeat(32),
  verification: { state: 'verified', reason: '', at: 0 },
  ...over,
});

function loaded(): RegistryIndex {
  const index = new RegistryIndex(60_000);
  index.load({
    namespaces: [{ name: 'ns', comment: '', createdAt: T, updatedAt: T }],
    services: [service(1)],
    instances: [instance('a')],
    tokens: [],
    lastEventId: 1,
  });
  return index;
}

describe('registry index: read through views, changed by named operations', () => {
  it('noteHeartbeat moves lastHeartbeat forward only, and answers nothing for an instance it does not hold', () => {
    const index = loaded();
    assert.equal(index.noteHeartbeat('a', T + 500)?.lastHeartbeat, T + 500);
    assert.equal(
      index.noteHeartbeat('a', T + 100)?.lastHeartbeat,
      T + 500,
      'an older time (another node, a late flush) never moves it back',
    );
    assert.equal(index.instances.get('a')!.lastHeartbeat, T + 500);
    assert.equal(index.noteHeartbeat('nobody', T + 900), undefined);
    assert.equal(index.instances.has('nobody'), false, 'a heartbeat never creates an instance');
  });

  it('a committed write keeps a heartbeat that landed in memory after the write was decided', () => {
    const index = loaded();
    index.noteHeartbeat('a', T + 700);
    index.apply([
      { kind: 'instance', id: 'a', rec: instance('a', { weight: 5, revision: 2 }) },
      { kind: 'service', namespace: 'ns', name: 'svc', rec: service(2) },
    ]);
    const a = index.instances.get('a')!;
    assert.equal(a.weight, 5);
    assert.equal(a.lastHeartbeat, T + 700);
    assert.equal(index.service('ns', 'svc')!.instances.get('a'), a, 'the service view holds the same record');
  });

  it('the default answer is served from its cache until a change of the service, and a service revision never goes back', () => {
    const index = loaded();
    const entry = index.service('ns', 'svc')!;
    const first = index.defaultAnswer(entry, T);
    assert.equal(index.defaultAnswer(entry, T + 1), first, 'cached');
    const moved: number[] = [];
    index.onServiceChanged((_ns, _svc, rev) => rev !== undefined && moved.push(rev));
    index.apply([
      { kind: 'instance', id: 'b', rec: instance('b', { revision: 3 }) },
      { kind: 'service', namespace: 'ns', name: 'svc', rec: service(3) },
    ]);
    const second = index.defaultAnswer(entry, T + 2);
    assert.notEqual(second, first, 'rebuilt after the change');
    assert.deepEqual(
      JSON.parse(second.toString()).instances.map((i: { id: string }) => i.id),
      ['a', 'b'],
    );
    index.apply([{ kind: 'service', namespace: 'ns', name: 'svc', rec: service(2) }]);
    assert.equal(
      index.service('ns', 'svc')!.rec.revision,
      3,
      'a batch that committed later with a lower number does not move it back',
    );
    assert.deepEqual(moved, [3, 3]);
  });

  it('deletes reach every view: namespaces, services, instances', () => {
    const index = loaded();
    index.apply([
      { kind: 'instance', id: 'a', rec: undefined },
      { kind: 'service', namespace: 'ns', name: 'svc', rec: undefined },
      { kind: 'namespace', name: 'ns', rec: undefined },
    ]);
    assert.equal(index.instances.size, 0);
    assert.equal(index.service('ns', 'svc'), undefined);
    assert.deepEqual(index.servicesOf('ns'), []);
    assert.equal(index.namespaces.has('ns'), false);
    assert.equal(index.loaded, true);
  });
});
