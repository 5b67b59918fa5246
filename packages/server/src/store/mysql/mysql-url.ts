/**
 * `store.url` for the MySQL store: `mysql://user:password@host:port/database`. Kept apart from
 * the store so the configuration can check a URL without loading the driver.
 */
export interface MysqlTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** The database used when the URL names none. */
export const DEFAULT_MYSQL_DATABASE = 'muster';

const DATABASE_RE = /^[A-Za-z0-9_$-]{1,64}$/;

/** Parses a mysql:// URL; throws an Error whose message says what is wrong (never the password). */
export function parseMysqlUrl(url: string): MysqlTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('must be a URL like mysql://user:password@host:3306/muster');
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:')
    throw new Error(`must be a mysql:// URL, not ${u.protocol}//`);
  if (u.hostname === '') throw new Error('must name a host: mysql://user@host:3306/muster');
  if (u.search !== '' || u.hash !== '')
    throw new Error('must not have a ?query or #fragment: mysql://user:password@host:3306/muster');
  const path = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const database = path === '' ? DEFAULT_MYSQL_DATABASE : path;
  if (!DATABASE_RE.test(database))
    throw new Error(`database name ${JSON.stringify(database)} must be 1..64 characters of A-Z a-z 0-9 _ $ -`);
  const port = u.port === '' ? 3306 : Number(u.port);
  return {
    // IPv6 literals come back bracketed from URL; the driver wants them bare.
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    user: u.username === '' ? 'root' : decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database,
  };
}

/** The URL with its password masked, for messages and logs. */
export function redactMysqlUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}
