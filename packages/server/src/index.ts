export { Muster, openStore } from './muster.js';
export type { MusterOptions } from './muster.js';
export { loadConfig, ConfigError } from './config/config.js';
export type { MusterConfig } from './config/config.js';
export type { Store, StoreTx } from './store/store.js';
export { MemoryStore } from './store/memory/memory-store.js';
export { SqliteStore } from './store/sqlite/sqlite-store.js';
