import tls from 'node:tls';
import { MusterError, type ClusterStatus, type MusterHttpClient, type Readiness, type TokenSelf } from '@muster/client';
import { isLoopback } from '../config/config.js';

export type FindingStatus = 'ok' | 'warn' | 'fail';

/** One thing the doctor looked at: how it stands, in words, and what to do when it is not ok. */
export interface Finding {
  check: string;
  status: FindingStatus;
  message: string;
  fix?: string;
}

export interface DoctorOptions {
  /** Nodes whose clocks differ by more than this fail the clock check. Default 1000 ms. */
  maxClockSkewMs?: number;
  /** A certificate that expires sooner than this is a warning. Default 14 days. */
  certWarnDays?: number;
  /** PEM of the CA that signed the server's certificate (--ca), for the TLS check. */
  ca?: Buffer;
}

const DAY = 86_400_000;

/**
 * Looks at a running server (and, in cluster mode, its cluster) the way an operator would and
 * answers what is wrong in plain words. Never throws: what cannot be checked is a finding too.
 */
export async function diagnose(client: MusterHttpClient, opts: DoctorOptions = {}): Promise<Finding[]> {
  const out: Finding[] = [];
  const url = new URL(client.server);
  if (url.protocol === 'https:') out.push(await certificate(url, opts));

  let ready: Readiness;
  const t0 = Date.now();
  try {
    ready = await client.readiness({ timeoutMs: 5000 });
  } catch (err) {
    out.push({
      check: 'reachable',
      status: 'fail',
      message: `${client.server} did not answer: ${message(err)}`,
      fix: 'check that the server runs and that --server (or MUSTER_SERVER) names its HTTP address',
    });
    return out;
  }
  out.push({ check: 'reachable', status: 'ok', message: `${client.server} answered in ${Date.now() - t0} ms` });
  out.push(...readiness(ready));

  let self: TokenSelf | undefined;
  try {
    self = await client.self();
  } catch (err) {
    if (err instanceof MusterError && err.code === 'UNAUTHENTICATED') {
      out.push({
        check: 'access token',
        status: 'fail',
        message: `the server refused the access token: ${err.message}`,
        fix: 'give a valid token with --access-token or MUSTER_TOKEN',
      });
    } else out.push({ check: 'auth', status: 'warn', message: `could not read the auth settings: ${message(err)}` });
  }

  let cluster: ClusterStatus | undefined;
  try {
    cluster = await client.cluster({ timeoutMs: 5000 });
  } catch (err) {
    const needsToken =
      err instanceof MusterError && (err.code === 'UNAUTHENTICATED' || err.code === 'PERMISSION_DENIED');
    out.push({
      check: 'cluster',
      status: 'warn',
      message: `could not list the nodes: ${message(err)}`,
      ...(needsToken
        ? { fix: 'give a token with read on every namespace (--access-token or MUSTER_TOKEN) to check the cluster' }
        : {}),
    });
  }
  if (cluster) out.push(...clusterFindings(cluster, opts.maxClockSkewMs ?? 1000));
  if (self) out.push(...authFindings(self, url, cluster));
  return out;
}

function readiness(r: Readiness): Finding[] {
  const out: Finding[] = [];
  const c = r.checks;
  out.push(
    r.ready
      ? { check: 'ready', status: 'ok', message: 'the server is ready' }
      : {
          check: 'ready',
          status: 'fail',
          message: `the server is not ready (${Object.entries(c)
            .map(([k, v]) => `${k}: ${v}`)
            .join('; ')})`,
          fix: "see the checks below and the server's log",
        },
  );
  const store = c['store'];
  if (store !== undefined) {
    out.push(
      store === 'ok'
        ? { check: 'store', status: 'ok', message: 'the store answers' }
        : {
            check: 'store',
            status: 'fail',
            message: `the store is ${store}`,
            fix: 'check that the database (store.url) is up and reachable from this node, or that the SQLite data directory is on a working disk; writes fail until it is back',
          },
    );
  }
  if (c['index'] !== undefined && c['index'] !== 'loaded')
    out.push({
      check: 'index',
      status: 'fail',
      message: `the registry index is ${c['index']}`,
      fix: "wait for the start to finish; if it does not, see the server's log",
    });
  if (c['redis'] !== undefined) {
    out.push(
      c['redis'] === 'ok'
        ? { check: 'redis', status: 'ok', message: 'Redis answers' }
        : {
            check: 'redis',
            status: 'fail',
            message: `Redis is ${c['redis']}`,
            fix: 'check that Redis (cluster.redis) is up and reachable from every node; until then no node expires silent instances',
          },
    );
  }
  if (c['changeLog'] !== undefined && c['changeLog'] !== 'ok') {
    out.push({
      check: 'change log',
      status: 'fail',
      message: `following other nodes' changes is ${c['changeLog']}`,
      fix: 'this node answers from what it last read: check its connection to the database',
    });
  }
  return out;
}

function clusterFindings(status: ClusterStatus, maxSkewMs: number): Finding[] {
  if (status.mode === 'single') return [{ check: 'cluster', status: 'ok', message: 'a single node on its own store' }];
  const out: Finding[] = [];
  const live = status.nodes.filter((n) => !n.stale);
  out.push({
    check: 'nodes',
    status: 'ok',
    message: `${status.nodes.length} node(s): ${status.nodes.map((n) => n.id).join(', ')}`,
  });
  for (const n of status.nodes.filter((x) => x.stale)) {
    out.push({
      check: 'nodes',
      status: 'warn',
      message: `node ${n.id} was last seen ${Math.round(n.lastSeenAgoMs / 1000)} s ago`,
      fix: 'if it was stopped on purpose this clears by itself; otherwise look at that node',
    });
  }
  out.push(
    status.leaseHolder === null
      ? {
          check: 'sweep lease',
          status: 'fail',
          message: 'no node holds the sweep lease: silent instances are not expired',
          fix: 'check that the nodes reach Redis; a node takes the lease within cluster.leaseTtl once they do',
        }
      : { check: 'sweep lease', status: 'ok', message: `held by ${status.leaseHolder}` },
  );
  const versions = new Set(live.map((n) => n.version));
  if (versions.size > 1)
    out.push({
      check: 'versions',
      status: 'warn',
      message: `the nodes run different versions (${live.map((n) => `${n.id} ${n.version}`).join(', ')})`,
      fix: 'fine during a rolling upgrade; finish it',
    });
  const timed = live.filter((n) => n.clockOffsetMs !== undefined);
  if (timed.length >= 2) {
    const offsets = timed.map((n) => n.clockOffsetMs!);
    const skew = Math.max(...offsets) - Math.min(...offsets);
    const list = timed.map((n) => `${n.id} ${n.clockOffsetMs! >= 0 ? '+' : ''}${n.clockOffsetMs} ms`).join(', ');
    out.push(
      skew > maxSkewMs
        ? {
            check: 'clocks',
            status: 'fail',
            message: `the nodes' clocks differ by ${skew} ms (against Redis's clock: ${list})`,
            fix: 'run time synchronisation (chrony or systemd-timesyncd) on every node; event times and heartbeat ages shown by different nodes disagree until then',
          }
        : { check: 'clocks', status: 'ok', message: `the nodes' clocks agree within ${skew} ms` },
    );
  }
  return out;
}

function authFindings(self: TokenSelf, url: URL, cluster: ClusterStatus | undefined): Finding[] {
  // Reachable from elsewhere: asked through a non-loopback name, or a node listens on one (0.0.0.0 too).
  const hosts = [url.hostname, ...(cluster?.nodes ?? []).map((n) => hostOf(n.httpAddress))];
  const exposed = hosts.filter((h) => h !== '' && !isLoopback(h));
  if (exposed.length === 0) {
    return [
      {
        check: 'auth',
        status: 'ok',
        message: self.auth.enabled ? 'auth is on' : 'auth is off, on a loopback address only',
      },
    ];
  }
  const where = [...new Set(exposed)].join(', ');
  const out: Finding[] = [];
  if (!self.auth.enabled) {
    out.push({
      check: 'auth',
      status: 'fail',
      message: `auth is off on an address others can reach (${where}): anyone there can register, remove or isolate instances`,
      fix: 'set auth.enabled: true (the default), or listen on 127.0.0.1 only',
    });
    return out;
  }
  out.push({ check: 'auth', status: 'ok', message: 'auth is on' });
  if (self.auth.clients === 'open') {
    out.push({
      check: 'auth.clients',
      status: 'warn',
      message: `register, heartbeat and discover need no token on ${where}`,
      fix: 'set auth.clients: required (or auto) unless every client is trusted',
    });
  }
  if (url.protocol === 'http:') {
    out.push({
      check: 'tls',
      status: 'warn',
      message: `tokens travel in plain text to ${where}`,
      fix: 'set tls.cert and tls.key, or keep the server behind a TLS proxy',
    });
  }
  return out;
}

function certificate(url: URL, opts: DoctorOptions): Promise<Finding> {
  const port = Number(url.port || 443);
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: url.hostname,
      port,
      servername: isIp(url.hostname) ? undefined : url.hostname,
      rejectUnauthorized: false,
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('no TLS handshake within 5 s')));
    socket.once('error', (err) =>
      resolve({ check: 'tls certificate', status: 'fail', message: `the TLS handshake failed: ${err.message}` }),
    );
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      const trusted = socket.authorized;
      const why = socket.authorizationError;
      socket.end();
      const expires = Date.parse(cert.valid_to);
      const days = Math.floor((expires - Date.now()) / DAY);
      if (!Number.isFinite(expires))
        resolve({ check: 'tls certificate', status: 'warn', message: 'the server sent no readable certificate' });
      else if (expires < Date.now())
        resolve({
          check: 'tls certificate',
          status: 'fail',
          message: `the certificate expired on ${cert.valid_to}`,
          fix: 'renew tls.cert and restart the server',
        });
      else if (!trusted)
        resolve({
          check: 'tls certificate',
          status: 'fail',
          message: `the certificate is not trusted here (${String(why)}); it expires in ${days} day(s)`,
          fix: 'give the CA that signed it with --ca, or fix the certificate chain',
        });
      else if (days < (opts.certWarnDays ?? 14))
        resolve({
          check: 'tls certificate',
          status: 'warn',
          message: `the certificate expires in ${days} day(s), on ${cert.valid_to}`,
          fix: 'renew tls.cert soon; the server reads it at start',
        });
      else resolve({ check: 'tls certificate', status: 'ok', message: `valid until ${cert.valid_to} (${days} days)` });
    });
  });
}

function hostOf(address: string): string {
  try {
    return new URL(address).hostname;
  } catch {
    return '';
  }
}

const isIp = (h: string) => /^[\d.]+$/.test(h) || h.includes(':') || h.startsWith('[');

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
