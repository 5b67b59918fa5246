import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { GRPC_FIELD_KEY, PROTO_ROOT, REGISTRY_PROTO } from '@muster/api';

/**
 * A real grpc-js client of muster.v1.Registry for the tests, loading the proto the server ships,
 * as any client would: camelCase fields, unset fields absent.
 */

const pkgDef = await protoLoader.load(REGISTRY_PROTO, {
  includeDirs: [PROTO_ROOT],
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: false,
});
type Ctor = new (address: string, creds: grpc.ChannelCredentials) => grpc.Client & Record<string, any>;
const Registry = (grpc.loadPackageDefinition(pkgDef) as any).muster.v1.Registry as Ctor;

export type RegistryClient = grpc.Client & Record<string, any>;

export function registryClient(address: string): RegistryClient {
  return new Registry(address, grpc.credentials.createInsecure());
}

/** A unary call as a promise; rejects with the grpc-js ServiceError. */
export function call<T = any>(
  client: RegistryClient,
  method: string,
  req: object,
  options: grpc.CallOptions = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method](req, new grpc.Metadata(), options, (err: grpc.ServiceError | null, res: T) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** Awaits a failure and checks its status code, trailer field and message prefix. */
export async function rejectsWith(
  p: Promise<unknown>,
  code: grpc.status,
  field?: string,
  what = '',
): Promise<grpc.ServiceError> {
  try {
    const res = await p;
    assert.fail(`${what}: expected ${grpc.status[code]}, got an answer ${JSON.stringify(res)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    const e = err as grpc.ServiceError;
    assert.equal(e.code, code, `${what}: status ${grpc.status[e.code]} (${e.details})`);
    const trailer = e.metadata?.get(GRPC_FIELD_KEY)[0];
    if (field !== undefined) {
      assert.equal(trailer, field, `${what}: field trailer of "${e.details}"`);
      assert.ok(e.details.startsWith(`${field}: `), `${what}: the message names the field: ${e.details}`);
    }
    return e;
  }
}

/**
 * Reads a stream as it arrives (errors included, so none is ever unhandled) and hands out its
 * messages one by one.
 */
export class StreamReader<T = any> {
  private readonly items: T[] = [];
  private readonly wakers = new Set<() => void>();
  /** The error the stream ended with, if it did. */
  error: grpc.ServiceError | undefined;
  ended = false;

  constructor(readonly stream: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<any, T>) {
    stream.on('data', (d: T) => this.push(() => this.items.push(d)));
    stream.on('error', (e: grpc.ServiceError) => this.push(() => ((this.error = e), (this.ended = true))));
    stream.on('end', () => this.push(() => (this.ended = true)));
  }

  private push(f: () => void): void {
    f();
    for (const w of [...this.wakers]) w();
  }

  private wait(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => (this.wakers.delete(wake), reject(new Error(`${what}: nothing in ${timeoutMs} ms`))),
        timeoutMs,
      );
      const wake = () => {
        if (!ready()) return;
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      this.wakers.add(wake);
    });
  }

  /** The next message; rejects with the stream's error when it ended instead. */
  async next(timeoutMs = 5000): Promise<T> {
    await this.wait(() => this.items.length > 0 || this.ended, timeoutMs, 'next message');
    if (this.items.length > 0) return this.items.shift()!;
    throw this.error ?? new Error('stream ended');
  }

  /** Resolves with the error the stream ended with (undefined for OK). */
  async end(timeoutMs = 5000): Promise<grpc.ServiceError | undefined> {
    await this.wait(() => this.ended, timeoutMs, 'end of stream');
    return this.error;
  }

  get pending(): number {
    return this.items.length;
  }
}

/** A client that sends raw bytes as the request of a method: for messages that do not decode. */
export function rawClient(address: string): RegistryClient {
  const raw = (name: string, requestStream: boolean, responseStream: boolean) => ({
    path: `/muster.v1.Registry/${name}`,
    requestStream,
    responseStream,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  });
  const Raw = grpc.makeGenericClientConstructor(
    {
      Register: raw('Register', false, false),
      Heartbeat: raw('Heartbeat', false, false),
      Discover: raw('Discover', false, false),
      Watch: raw('Watch', false, true),
      HeartbeatStream: raw('HeartbeatStream', true, true),
    },
    'RawRegistry',
  );
  return new Raw(address, grpc.credentials.createInsecure()) as RegistryClient;
}

/** Reads a Prometheus sample from the HTTP API's /metrics. */
export async function metric(baseUrl: string, name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}
