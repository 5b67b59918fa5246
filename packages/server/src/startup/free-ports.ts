import net from 'node:net';
import { ConfigError } from '../config/config.js';
import { flagName } from '../config/options.js';

export interface PortToCheck {
  /** What listens there, for the message: "HTTP API". */
  what: string;
  port: number;
  /** The option that sets it: "httpPort". */
  option: string;
}

/**
 * Fails with one clear ConfigError when a port cannot be bound, before the server creates
 * anything (its data files, the admin token). Port 0 (any free one) is never checked. A port
 * taken between this check and the real listen still fails there, only less politely.
 */
export async function checkPortsFree(host: string, ports: PortToCheck[]): Promise<void> {
  for (const p of ports) {
    if (p.port === 0) continue;
    const err = await tryListen(host, p.port);
    if (err)
      throw new ConfigError(
        `cannot listen on ${hostPort(host, p.port)} for the ${p.what}: ${why(err)}. ${remedy(err, p)}`,
      );
  }
}

function tryListen(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    // exclusive: a port held by another worker of a cluster is in use for us too.
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function why(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'the address is already in use (another Muster server, or another program, listens there)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case 'EADDRNOTAVAIL':
      return "the address is not one of this machine's";
    default:
      return err.message;
  }
}

function remedy(err: NodeJS.ErrnoException, p: PortToCheck): string {
  const flag = flagName(p.option);
  return err.code === 'EADDRNOTAVAIL'
    ? 'Choose another host with --host'
    : `Stop what listens there, or choose another port with ${flag} (option ${p.option})`;
}
