/**
 * A consumer: finds example-provider's instances and calls one, once a second.
 *
 *   npm start                      # the registry
 *   node examples/dist/provider.js # one or more providers (PORT=8081 ... for more)
 *   node examples/dist/consumer.js
 */
import { MusterClient, locality } from '@muster/client';

const client = new MusterClient({
  cacheDir: '.muster-cache', // the last good answer survives a registry outage and a restart
  location: { region: 'local', zone: 'zone-a' },
  balancer: locality(), // same zone first, then same region, then anywhere
});

client.on('update', ({ service, revision, instances }) =>
  console.log(`${service}: revision ${revision}, ${instances} instance(s)`),
);
client.on('stale', ({ service, reason, ageMs }) =>
  console.log(`${service}: answers are stale (${reason}, ${Math.round(ageMs / 1000)} s old)`),
);
client.on('fresh', ({ service }) => console.log(`${service}: answers are current again`));
client.on('failover', (from, to, err) => console.log(`registry ${from} failed (${err.code}); using ${to}`));

const answer = await client.discover('example-provider');
console.log(`found ${answer.instances.length} instance(s)${answer.stale ? ' (stale)' : ''}`);

const timer = setInterval(async () => {
  const instance = client.pick('example-provider'); // synchronous, no I/O
  if (!instance) return console.log('no instance available');
  try {
    const res = await fetch(`http://${instance.host}:${instance.port}/`, { signal: AbortSignal.timeout(1000) });
    console.log(`${instance.id} answered: ${(await res.text()).trim()}`);
  } catch (err) {
    console.log(`${instance.host}:${instance.port} failed: ${(err as Error).message}`);
  }
}, 1000);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    clearInterval(timer);
    void client.close();
  });
}
