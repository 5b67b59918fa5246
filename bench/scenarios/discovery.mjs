import { cannon, problems, steadyNote } from '../lib/cannon.mjs';
import { createClient, registerMany } from '../lib/client.mjs';
import { fmtCpu } from '../lib/probe.mjs';
import { fmtBytes, row } from '../lib/report.mjs';
import { withMuster } from '../lib/server.mjs';

function discovery(name, count, targetRatio) {
  return {
    name,
    needsCeiling: true,
    describe: `GET /v1/namespaces/default/services/S/instances of a ${count}-instance service (default filter: the pre-serialized answer)`,
    async run() {
      return withMuster({ label: name }, async (server) => {
        const client = createClient(server.url);
        const service = `disc-${count}`;
        const path = `/v1/namespaces/default/services/${service}/instances`;
        try {
          await registerMany(client, service, count);
          const probe = await client.request('GET', path);
          const seen = probe.json?.instances?.length;
          if (probe.status !== 200 || seen !== count)
            throw new Error(`discovery answered ${probe.status} with ${seen} instances, expected ${count}`);
          const s = await cannon({ url: server.url, pid: server.pid, path });
          return row({
            scenario: `discovery, ${count.toLocaleString('en-US')} instances`,
            rps: s.rps,
            p99: s.p99,
            ratioTarget: targetRatio,
            note: [
              `answer ${fmtBytes(probe.text.length)}, ${fmtBytes(s.bytesPerSec)}/s`,
              steadyNote(s),
              fmtCpu(s.cpu),
              problems(s),
            ]
              .filter(Boolean)
              .join('; '),
          });
        } finally {
          client.close();
        }
      });
    },
  };
}

export const discovery10 = discovery('discovery10', 10, 0.6);
export const discovery1000 = discovery('discovery1000', 1000, undefined);
