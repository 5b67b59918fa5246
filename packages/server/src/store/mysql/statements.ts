/**
 * Statements as values: SQL with its parameters, built into multi-row statements and packed
 * into queries (round trips) of a bounded size.
 */

/** A value of a statement; `toSqlString` is SQL the driver splices in as it is (only ever an expression of ours). */
export type Value = string | number | null | ReadonlyArray<string | number> | { toSqlString(): string };
/** One statement: SQL with ? placeholders (an array value expands to a list) and its values. */
export type Stmt = readonly [sql: string, values: Value[]];

/** Keys per statement in readRecords / updateHeartbeats / deletes by seq. */
export const CHUNK = 500;
/** Characters of SQL text and values per query: well under max_allowed_packet (16 MB on MariaDB, 64 MB on MySQL 8) even when escaped. */
const QUERY_BUDGET = 1 << 20;
/** Rows per multi-row statement at most. */
const ROWS_PER_STATEMENT = 1000;

/**
 * The values of several rows or statements as one list, by a loop: V8's Array#flat and #flatMap
 * cost several times as much at the sizes of a batch (a profiled hot spot of the commit).
 */
export function concat(lists: ReadonlyArray<readonly Value[]>): Value[] {
  const out: Value[] = [];
  for (const list of lists) for (let i = 0; i < list.length; i++) out.push(list[i]!);
  return out;
}

export function valuesOf(stmts: readonly Stmt[]): Value[] {
  return concat(stmts.map(([, values]) => values));
}

function valueSize(v: Value): number {
  if (v === null) return 4;
  if (typeof v === 'string') return v.length + 2;
  if (typeof v === 'number') return 16;
  return Array.isArray(v) ? v.reduce<number>((n, x) => n + valueSize(x) + 2, 0) : 48;
}

/** `head` VALUES tuple, tuple, ... `tail`, in statements of a bounded size. */
export function multiRow(head: string, tuple: string, rows: Value[][], tail = ''): Stmt[] {
  return rowGroups(rows).map(([from, to]) => [
    `${head} VALUES ${Array(to - from)
      .fill(tuple)
      .join(', ')}${tail}`,
    concat(rows.slice(from, to)),
  ]);
}

/** Rows split into [from, to) groups of a bounded count and size, one statement each. */
export function rowGroups(rows: Value[][]): Array<readonly [number, number]> {
  const out: Array<readonly [number, number]> = [];
  let from = 0;
  let size = 0;
  rows.forEach((row, i) => {
    const n = row.reduce<number>((acc, v) => acc + valueSize(v) + 2, 2);
    if (i > from && (i - from >= ROWS_PER_STATEMENT || size + n > QUERY_BUDGET / 4)) {
      out.push([from, i]);
      from = i;
      size = 0;
    }
    size += n;
  });
  if (rows.length > from) out.push([from, rows.length]);
  return out;
}

export function chunkedStmts<K extends string | number>(ids: K[], stmt: (ids: K[]) => Stmt): Stmt[] {
  return [...chunks(ids, CHUNK)].map(stmt);
}

/** Statements grouped into queries (round trips) of a bounded size. */
export function packQueries(stmts: Stmt[]): Stmt[][] {
  const out: Stmt[][] = [[]];
  let size = 0;
  for (const st of stmts) {
    const n = st[0].length + st[1].reduce<number>((acc, v) => acc + valueSize(v), 0);
    if (out[out.length - 1]!.length > 0 && size + n > QUERY_BUDGET) {
      out.push([]);
      size = 0;
    }
    out[out.length - 1]!.push(st);
    size += n;
  }
  return out;
}

export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

export function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

export function uniqueBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const t of items) if (!seen.has(key(t))) seen.set(key(t), t);
  return [...seen.values()];
}
