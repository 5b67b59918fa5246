/**
 * A provider: an HTTP service that registers itself with Muster and stays registered.
 *
 *   npm start                      # a registry on 127.0.0.1:8090 (HTTP) and :8091 (gRPC)
 *   node examples/dist/provider.js # built by `npm run build`
 *
 * MUSTER_SERVERS (comma separated) names other registries; PORT the port this service serves
 * (0: any free one);
 * MUSTER_VERIFY_SECRET the service's secret, when it requires verified registration.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MusterClient } from '@muster/client';

const zone = process.env['ZONE'] ?? 'zone-a';
// Set when the service requires verified registration (docs/security.md).
const secret = process.env['MUSTER_VERIFY_SECRET'];

const server = http.createServer((_req, res) => res.end(`hello from ${port}\n`));
await new Promise<void>((resolve) => server.listen(Number(process.env['PORT'] ?? 8080), '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

const client = new MusterClient(); // gRPC to 127.0.0.1:8091 unless MUSTER_SERVERS says otherwise
const reg = await client.register({
  service: 'example-provider',
  host: '127.0.0.1',
  port,
  version: '1.0.0',
  metadata: { env: 'dev' },
  location: { region: 'local', zone },
  healthCheck: { ttl: 5 },
  // On SIGTERM or SIGINT, deregister first: consumers stop picking us at once instead of
  // after 3 × ttl.
  deregisterOnExit: true,
  // The registry checks us right after we register: the SDK answers its challenge on our server.
  ...(secret ? { verification: { secret, server } } : {}),
});

reg.on('state', (state, previous) => console.log(`registration: ${previous} -> ${state}`));
reg.on('reregistered', (_instance, reason) =>
  console.log(`registered again (the registry had forgotten us: ${reason.code})`),
);
reg.on('failure', (err) => console.log(`registry trouble, retrying: ${err.code} ${err.message}`));
console.log(`serving on 127.0.0.1:${port} as instance ${reg.id ?? '(pending)'} (${reg.state})`);

// Our own shutdown work runs after the SDK's deregistration; the signal's default is kept, so
// without other listeners the process ends by the signal once it has deregistered.
process.once('SIGTERM', () => server.close());
process.once('SIGINT', () => server.close());
