import path from 'node:path';
import type { ServiceDefinition } from '@grpc/grpc-js';
import protoLoader, { type PackageDefinition } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { PROTO_ROOT, REGISTRY_PROTO } from '@muster/api';

export const REGISTRY_SERVICE = 'muster.v1.Registry';

/**
 * How the proto is read. keepCase false: fields are camelCase, the HTTP JSON shape, so decoded
 * messages go to the naming service as they are. defaults false: an unset field is absent, as in
 * JSON. oneofs false: proto3 `optional` fields are synthetic oneofs, and oneofs: true would add
 * keys such as `_weight: 'weight'` that the validator refuses as unknown fields; presence is
 * already visible, since a set optional field is there even when it holds 0 or ''.
 */
const LOAD_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: false,
};

export function loadRegistryPackage(): Promise<PackageDefinition> {
  return protoLoader.load(REGISTRY_PROTO, { ...LOAD_OPTIONS, includeDirs: [PROTO_ROOT] });
}

/** What reflection describes: the Registry and grpc.health.v1, so grpcurl can call both without a proto file. */
export function loadReflectedPackage(): Promise<PackageDefinition> {
  const healthRoot = path.resolve(path.dirname(healthProtoPath), '../..');
  return protoLoader.load([REGISTRY_PROTO, 'health/v1/health.proto'], {
    ...LOAD_OPTIONS,
    includeDirs: [PROTO_ROOT, healthRoot],
  });
}

/**
 * A request whose bytes do not decode. grpc-js answers INTERNAL when a deserializer throws, but
 * such a request is the caller's mistake: the handler answers INVALID_ARGUMENT instead.
 */
export class Undecodable {
  constructor(readonly detail: string) {}
}

export const isUndecodable = (v: unknown): v is Undecodable => v instanceof Undecodable;

/**
 * The Registry's method definitions, with two changes: a request that does not decode arrives
 * as an Undecodable, and a Buffer response is sent as it is (a discovery answer encoded once
 * and reused).
 */
export function registryDefinition(pkg: PackageDefinition): ServiceDefinition {
  const def = pkg[REGISTRY_SERVICE] as unknown as ServiceDefinition;
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        try {
          return m.requestDeserialize(buf);
        } catch (err) {
          return new Undecodable(err instanceof Error ? err.message : String(err));
        }
      },
      responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : m.responseSerialize(v)),
    };
  }
  return out;
}

/** Encodes a muster.v1.DiscoverResponse (the answer of Discover and of every Watch snapshot). */
export function discoverEncoder(pkg: PackageDefinition): (answer: object) => Buffer {
  const def = pkg[REGISTRY_SERVICE] as unknown as ServiceDefinition;
  return def['Discover']!.responseSerialize;
}
