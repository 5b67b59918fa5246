import type { EventType, RegistryEvent } from '@muster/api';
import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../model/records.js';

/**
 * The store: durable state, one interface composed of small per-resource parts (as PolarisMesh's
 * store/api.go does), implemented by memory, sqlite and (cluster mode) mysql. The contract suite
 * in store-contract.ts runs against every implementation.
 *
 * Writes happen only inside `transaction`, and only the write batcher opens transactions, so an
 * implementation never sees two at once. Each operation of a batch runs inside a savepoint so one
 * failing operation is rolled back alone. A store may hold writes back until the commit (MySQL
 * does, to send a batch's writes together); what fails there fails the whole transaction, marked
 * with markConflict when a retry of the writes one by one can tell the culprit apart.
 */
export interface Store {
  readonly kind: string;
  /** Create or migrate the schema; ready for use after it resolves. */
  open(): Promise<void>;
  close(): Promise<void>;
  /** Cheap round trip, for readiness. */
  ping(): Promise<void>;
  /** Everything the registry index needs at start. */
  load(): Promise<Snapshot>;
  /**
   * Runs fn in one transaction: committed when fn resolves, rolled back when it throws. A store
   * may use `opts.hints` to read ahead and `opts.deadline` to give up earlier than it would; one
   * that needs neither ignores them.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts?: TxOptions): Promise<T>;
  /** Committed events only, oldest first. */
  listEvents(filter: EventFilter): Promise<RegistryEvent[]>;
  /** Every access token, revoked ones included: how a cluster node catches up after a token change. */
  listTokens(): Promise<TokenRecord[]>;
  /**
   * A consistent copy of the whole store written to `file` while it keeps serving; only a store
   * that is one file (SQLite) has it. A shared database is backed up with its own tools.
   */
  backup?(file: string): Promise<void>;
}

/**
 * The change log of a store that several nodes share (cluster mode): how a node learns what the
 * others committed. It follows the change sequence (event ids) and re-reads the rows the changes
 * name. An optional capability, asked for with hasChangeLog: cluster mode needs it and runs on
 * MySQL; memory and SQLite have it too, so the follower is tested without a database server (two
 * SQLite stores on one file are two nodes).
 */
export interface ChangeLog {
  /** listEvents, with what only a follower of the change log asks for (ChangeLogFilter). */
  listEvents(filter: ChangeLogFilter): Promise<RegistryEvent[]>;
  /**
   * The committed rows of these keys, read outside any transaction; a key whose row is gone is
   * simply not in the answer. How a node of a cluster catches up with what other nodes wrote.
   */
  readRecords(keys: RecordKeys): Promise<Records>;
}

/** A store with a change log: what cluster mode runs on. */
export type SharedStore = Store & ChangeLog;

export function hasChangeLog(store: Store): store is SharedStore {
  return typeof (store as Partial<ChangeLog>).readRecords === 'function';
}

export interface TxOptions {
  hints?: TxHints;
  /** Epoch ms: the transaction gives up by then at the latest (a store's own limit may be sooner). */
  deadline?: number;
  /**
   * Called once every statement that locks rows has been sent and the commit is on its way: a
   * store that can run transactions side by side lets the next one start from here.
   */
  onCommitting?: () => void;
  /**
   * A store that numbers changes at commit (MySQL) answers appendEvent with a provisional number
   * (negative) and, once committed, before transaction() resolves, tells how to map those to
   * the real change numbers: every record written with a provisional revision must be renumbered.
   */
  onNumbered?: (renumber: (n: number) => number) => void;
}

/**
 * What the writes of a transaction are expected to touch, announced up front so a store whose
 * every read is a round trip (MySQL) can read (and lock) it all at once. Only a hint: a write
 * may touch more or less, which costs round trips, never correctness.
 */
export interface TxHints {
  namespaces?: string[];
  services?: Array<[namespace: string, name: string]>;
  instances?: string[];
  /**
   * What the node's index holds of some of those keys, which a store may take instead of
   * reading them, provided its commit fails as a conflict (markConflict) wherever they were no
   * longer so: a service's settings changed, an instance absent here exists. The batcher gives
   * these only to a batch's first try; its re-runs read.
   */
  indexed?: IndexedRecords;
}

export interface IndexedRecords {
  namespaces: NamespaceRecord[];
  services: ServiceRecord[];
  absentInstances: string[];
}

/** Conflict errors and the deadline of the transaction that failed with each. */
const conflicts = new WeakMap<object, number>();

/**
 * Marks the failure of a whole transaction as a collision with another node's concurrent write
 * (a duplicate key, a deadlock) found where the transaction's writes cannot be told apart (at
 * commit): the same writes in smaller transactions may well succeed, so the write batcher
 * re-runs them one per transaction, by the failed transaction's deadline, and only the
 * colliding one fails.
 */
export function markConflict<E extends object>(err: E, deadline: number): E {
  conflicts.set(err, deadline);
  return err;
}

export function isConflict(err: unknown): boolean {
  return typeof err === 'object' && err !== null && conflicts.has(err);
}

/** The deadline of the transaction that failed with this conflict. */
export function conflictDeadline(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? conflicts.get(err) : undefined;
}

export interface RecordKeys {
  namespaces: string[];
  services: Array<[namespace: string, name: string]>;
  instances: string[];
}

export interface Records {
  namespaces: NamespaceRecord[];
  services: ServiceRecord[];
  instances: InstanceRecord[];
}

export interface Snapshot {
  namespaces: NamespaceRecord[];
  services: ServiceRecord[];
  instances: InstanceRecord[];
  tokens: TokenRecord[];
  /** The highest change sequence (event id) ever written: revisions continue above it. */
  lastEventId: number;
}

export interface EventFilter {
  namespace?: string;
  service?: string;
  instanceId?: string;
  types?: EventType[];
  /** Only events with id greater than this. */
  afterId?: number;
  /** Only events at or after this time (epoch ms). */
  since?: number;
  limit: number;
  /** Newest first instead of oldest first. */
  newestFirst?: boolean;
}

/** The change log's reads: an EventFilter and what only a follower of the log asks for. */
export interface ChangeLogFilter extends EventFilter {
  /**
   * Also the change numbers a failed commit took and left unused (MySQL; type '', no namespace,
   * service or instance): they carry no change, but a follower of the change log must learn that
   * the number is taken and will never carry one, instead of waiting for it as for a gap.
   */
  withUnused?: boolean;
  /**
   * Id ranges (inclusive) left out; the limit counts what is left. A cluster node need not read
   * back the changes it committed itself.
   */
  skip?: ReadonlyArray<readonly [from: number, to: number]>;
}

export type NewEvent = Omit<RegistryEvent, 'id' | 'at'> & { at: number };

export interface NamespaceTx {
  getNamespace(name: string): Promise<NamespaceRecord | undefined>;
  putNamespace(rec: NamespaceRecord): Promise<void>;
  deleteNamespace(name: string): Promise<void>;
  countServices(namespace: string): Promise<number>;
}

export interface ServiceTx {
  getService(namespace: string, name: string): Promise<ServiceRecord | undefined>;
  putService(rec: ServiceRecord): Promise<void>;
  deleteService(namespace: string, name: string): Promise<void>;
}

export interface InstanceTx {
  getInstance(id: string): Promise<InstanceRecord | undefined>;
  /**
   * Writes the instance and its child rows. `prev` is the row as read in this transaction
   * (undefined: known not to exist), so a store can skip child rows that did not change; when
   * the argument is omitted entirely, the store assumes nothing.
   */
  putInstance(rec: InstanceRecord, prev?: InstanceRecord | null): Promise<void>;
  deleteInstance(id: string): Promise<void>;
  listInstanceIds(namespace: string, service: string): Promise<string[]>;
  /** Batched heartbeat flush: only lastHeartbeat changes; unknown ids are ignored. */
  updateHeartbeats(beats: ReadonlyArray<{ id: string; lastHeartbeat: number }>): Promise<void>;
}

export interface EventTx {
  /**
   * Appends an event and answers its id: the next change sequence number, which is also the
   * revision of what it is about; or a provisional (negative) number, see TxOptions.onNumbered.
   */
  appendEvent(event: NewEvent): Promise<number>;
  /** Drops events beyond the newest `keep` and older than `olderThan`; answers how many. */
  pruneEvents(keep: number, olderThan: number): Promise<number>;
}

export interface TokenTx {
  listTokens(): Promise<TokenRecord[]>;
  /** Inserts or replaces the token of this id. */
  putToken(rec: TokenRecord): Promise<void>;
}

export interface StoreTx extends NamespaceTx, ServiceTx, InstanceTx, EventTx, TokenTx {
  savepoint(): Promise<void>;
  releaseSavepoint(): Promise<void>;
  rollbackToSavepoint(): Promise<void>;
}
