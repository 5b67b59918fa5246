// The gRPC ceiling: the least a @grpc/grpc-js server does per unary call on this machine. No
// Muster: muster.v1.Registry with Discover only (the other methods answer UNIMPLEMENTED), which
// answers every request with one fixed DiscoverResponse, encoded once, as Muster sends its cached
// discovery answers. The request is still decoded by the proto's codec, as Muster's are. Run as
// its own process so it gets a core the way Muster does; prints {"port":N,"bytes":B} when bound.
//   node bench/lib/grpc-ceiling-server.mjs [instances=4]
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { PROTO_ROOT, REGISTRY_PROTO } from '@muster/api';

const count = Number(process.argv[2] ?? 4);
const pkg = await protoLoader.load(REGISTRY_PROTO, {
  includeDirs: [PROTO_ROOT],
  keepCase: false,
  longs: Number,
  defaults: false,
  oneofs: false,
});
const def = pkg['muster.v1.Registry'];

// Muster's answer shape (see a Discover of the discovery scenario's instances): a 40-hex id,
// heartbeat health check, the revision and heartbeat age; about 90 bytes per instance.
const instances = Array.from({ length: count }, (_, i) => ({
  id: (i.toString(16).padStart(2, '0') + 'a7c3e9b1d5f2'.repeat(4)).slice(0, 40),
  host: `10.0.0.${i + 1}`,
  port: 8080,
  weight: 100,
  location: {},
  healthCheck: { type: 'heartbeat', ttl: 60 },
  healthy: true,
  lastHeartbeatAgeMs: 1234,
  revision: 5 + i,
}));
const answer = def.Discover.responseSerialize({ namespace: 'default', service: 'ceiling', revision: 12, instances });

const service = {
  Discover: { ...def.Discover, responseSerialize: (v) => (Buffer.isBuffer(v) ? v : def.Discover.responseSerialize(v)) },
};
const server = new grpc.Server();
server.addService(service, { Discover: (_call, callback) => callback(null, answer) });
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(JSON.stringify({ port, bytes: answer.length }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
