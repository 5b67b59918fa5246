import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { ServerTls } from '../../config/tls-files.js';
import { Errors } from '../../errors.js';
import { AnswerEncoder } from './answers.js';
import {
  discoverEncoder,
  loadReflectedPackage,
  loadRegistryPackage,
  REGISTRY_SERVICE,
  registryDefinition,
} from './codec.js';
import type { GrpcDeps } from './context.js';
import { toGrpcStatus } from './error-mapping.js';
import { registryService } from './registry-service.js';

type AddService = Pick<grpc.Server, 'addService'>;

/**
 * The gRPC adapter: muster.v1.Registry, grpc.health.v1 (SERVING once listening, NOT_SERVING from
 * the start of shutdown) and server reflection, on one port: plain text, or TLS only.
 */
export class GrpcServer {
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING', [REGISTRY_SERVICE]: 'NOT_SERVING' });
  /**
   * Shutdown ends the Registry's own streams through the watch hub; these are the health Watch
   * and reflection streams, which never end on their own and would hold the server until the
   * shutdown timeout.
   */
  private readonly foreignStreams = new Set<() => void>();
  private boundPort: number | undefined;

  private constructor(
    private readonly deps: GrpcDeps,
    private readonly server: grpc.Server,
  ) {}

  static async create(deps: GrpcDeps): Promise<GrpcServer> {
    const [pkg, reflected] = await Promise.all([loadRegistryPackage(), loadReflectedPackage()]);
    const server = new grpc.Server({
      // Pings find dead watchers whose connection vanished without a FIN (a watch may be silent for hours).
      'grpc.keepalive_time_ms': deps.config.watch.keepAlive,
      'grpc.keepalive_timeout_ms': 20_000,
    });
    const self = new GrpcServer(deps, server);
    server.addService(
      registryDefinition(pkg),
      registryService(deps, new AnswerEncoder(deps.naming, discoverEncoder(pkg))),
    );
    const endable = self.endableStreams();
    self.health.addToServer(endable);
    new ReflectionService(reflected).addToServer(endable);
    return self;
  }

  /**
   * Binds host:port (0 = a free port) and reports SERVING; answers the port bound. With `tls`
   * the port speaks TLS only, and with `tls.ca` it requires a client certificate that CA signed.
   */
  async listen(host: string, port: number, tls?: ServerTls): Promise<number> {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const credentials = tls
      ? grpc.ServerCredentials.createSsl(
          tls.ca ?? null,
          [{ cert_chain: tls.cert, private_key: tls.key }],
          tls.ca !== undefined,
        )
      : grpc.ServerCredentials.createInsecure();
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
    });
    this.health.setStatus('', 'SERVING');
    this.health.setStatus(REGISTRY_SERVICE, 'SERVING');
    return this.boundPort;
  }

  get port(): number {
    if (this.boundPort === undefined) throw new Error('gRPC server is not listening');
    return this.boundPort;
  }

  /**
   * Stops accepting calls and waits for the ones in flight (the watch hub has already answered
   * long-polls and ended Watch and HeartbeatStream calls); after `timeoutMs` the rest are cut.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.health.setStatus('', 'NOT_SERVING');
    this.health.setStatus(REGISTRY_SERVICE, 'NOT_SERVING');
    for (const end of [...this.foreignStreams]) end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.deps.log.warn({ timeoutMs }, 'gRPC calls did not finish in time; cutting them');
        this.server.forceShutdown();
        resolve();
      }, timeoutMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** An addService that remembers the streaming calls it serves, so stop can end them. */
  private endableStreams(): AddService {
    return {
      addService: (def, impl) => {
        const wrapped: grpc.UntypedServiceImplementation = {};
        for (const [name, attrs] of Object.entries(def)) {
          const fn = impl[name] ?? (attrs.originalName === undefined ? undefined : impl[attrs.originalName]);
          if (fn === undefined) continue;
          if (!attrs.responseStream) {
            wrapped[name] = fn.bind(impl);
            continue;
          }
          wrapped[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
            const end = () => call.emit('error', toGrpcStatus(Errors.shuttingDown()));
            this.foreignStreams.add(end);
            // grpc-js reports every finished call as cancelled, whichever side ended it.
            call.on('cancelled', () => this.foreignStreams.delete(end));
            (fn as (c: typeof call) => void).call(impl, call);
          };
        }
        this.server.addService(def, wrapped);
      },
    };
  }
}
