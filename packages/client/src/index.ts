/**
 * @muster/client: the typed HTTP client of the Muster registry. The shared wire types and
 * MusterError are re-exported so callers need only this package.
 */
export * from '@muster/api';
export * from './http-client.js';
export type { CallOptions } from './transport.js';
export type { SnapshotHandler, Watch, WatchEnd } from './watch.js';
