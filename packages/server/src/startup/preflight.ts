import type { MusterConfig } from '../config/config.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { checkPortsFree } from './free-ports.js';

/**
 * What a server checks before it creates anything: its ports are free and, on SQLite, the data
 * directory is its own (the lock is released by `release()` at stop, or by the process's end).
 * Fails with a ConfigError: the command exits 2 with its message.
 */
export async function preflight(config: MusterConfig, storeKind: string): Promise<DataDirLock | undefined> {
  await checkPortsFree(config.host, [
    { what: 'HTTP API', port: config.httpPort, option: 'httpPort' },
    { what: 'gRPC API', port: config.grpcPort, option: 'grpcPort' },
    ...(config.consul.port >= 0 ? [{ what: 'Consul API', port: config.consul.port, option: 'consul.port' }] : []),
  ]);
  return storeKind === 'sqlite' ? lockDataDir(config.dataDir) : undefined;
}
