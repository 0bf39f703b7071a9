// The MySQL connection pool (mysql2) wrapped by Drizzle, plus database creation and migrations.
import path from "node:path";
import mysql from "mysql2/promise";
import { drizzle, type MySql2Database } from "drizzle-orm/mysql2";
import { migrate } from "drizzle-orm/mysql2/migrator";
import { ImError } from "../protocol/errors";
import * as schema from "./schema";

export type Db = MySql2Database<typeof schema>;

export interface Database {
  db: Db;
  pool: mysql.Pool;
  /** End the pool: the queries running finish first; those still waiting for a connection fail. */
  close(): Promise<void>;
}

const MIGRATIONS = path.join(import.meta.dir, "../../drizzle");

/** Create the database named in the URL if it does not exist yet. */
export async function ensureDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`bad database name in DATABASE_URL: ${name}`);
  u.pathname = "/";
  const conn = await mysql.createConnection(u.toString());
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await conn.end();
  }
}

/** Called once for each failed MySQL query (or failed attempt to get a connection for one). */
export type DbErrorListener = (err: unknown) => void;

export interface DatabaseOptions {
  /** How long a query, or the wait for a pool connection, may take (MYSQL_TIMEOUT_MS). */
  timeoutMs: number;
  onError?: DbErrorListener;
}

export function connectDatabase(url: string, opts: DatabaseOptions): Database {
  const pool = mysql.createPool({ uri: url, connectionLimit: 10, enableKeepAlive: true });
  // The pool emits a new connection before its first query (the core pool's event: it passes the
  // callback-style connection), so these run first on every connection.
  pool.pool.on("connection", (conn) => {
    // Drizzle writes and reads DATETIME values as UTC; MySQL's own clock (CURRENT_TIMESTAMP, the
    // default of start_time) follows the session's time zone, the server's unless set
    conn.query("SET time_zone = '+00:00'", (err) => {
      if (err) conn.destroy();
    });
    // the server ends a statement past the deadline too: a client that gives up and drops the
    // connection does not stop it, and it would go on holding a server connection and its locks.
    // MariaDB's setting; MySQL, which lacks it, has one for SELECTs only (and no harm without either)
    conn.query(`SET SESSION max_statement_time = ${opts.timeoutMs / 1000}`, (err) => {
      if (err) conn.query(`SET SESSION max_execution_time = ${opts.timeoutMs}`, () => {});
    });
  });
  guardQueries(pool, opts.timeoutMs, opts.onError ?? (() => {}));
  return { db: drizzle(pool, { schema, mode: "default" }), pool, close: () => pool.end() };
}

type QueryFn = (...args: unknown[]) => Promise<unknown>;

/** The server ended a statement at its max_statement_time (MariaDB), or max_execution_time (MySQL). */
const STATEMENT_TIMEOUT_ERRNOS = new Set([1969, 3024]);

/**
 * Drizzle runs queries through the pool's query/execute, and transactions through a connection from
 * its getConnection: all three are replaced here, so that
 * - each query, and each wait for a connection, ends within `timeoutMs`: past it the caller gets
 *   ImError "unavailable" and the connection, still busy with the query, is destroyed (the server
 *   ends the statement by then too: see connectDatabase). A stalled MySQL then fails requests and
 *   jobs (to be retried) instead of holding them, and every pooled connection, until TCP gives up.
 *   mysql2's own query timeout does neither: it starts once the query runs, and gives the busy
 *   connection back to the pool. A connection so destroyed takes no more queries (Drizzle's
 *   rollback after a statement of a transaction timed out): they fail with that statement's error.
 * - a lost or refused connection, or a statement the server ended at the deadline, is ImError
 *   "unavailable" too (503 over HTTP), not "internal";
 * - each failed query is reported to `onError` once (mysql2 has no event for a failed query).
 */
function guardQueries(pool: mysql.Pool, timeoutMs: number, onError: DbErrorListener): void {
  const fail = (err: unknown): never => {
    onError(err);
    if (err instanceof ImError) throw err;
    const e = err as { fatal?: unknown; errno?: unknown };
    const unavailable = e.fatal === true || STATEMENT_TIMEOUT_ERRNOS.has(Number(e.errno));
    throw unavailable ? new ImError("unavailable", "MySQL is unavailable", { cause: err }) : err;
  };
  const getConnection = pool.getConnection.bind(pool);
  pool.getConnection = async () => {
    const connecting = getConnection();
    const conn = await withDeadline(connecting, timeoutMs, "a pooled connection", () => {
      // one that comes after all goes back to the pool
      connecting.then((c) => c.release(), () => {});
    }).catch(fail);
    let cutOff: ImError | null = null;
    for (const method of ["query", "execute"] as const) {
      const run = (conn[method] as QueryFn).bind(conn);
      (conn as unknown as Record<string, QueryFn>)[method] = (...args) => {
        if (cutOff) return Promise.reject(cutOff);
        return withDeadline(run(...args), timeoutMs, statementOf(args[0]), (late) => {
          cutOff = late;
          conn.destroy();
        }).catch(fail);
      };
    }
    return conn;
  };
  for (const method of ["query", "execute"] as const) {
    (pool as unknown as Record<string, QueryFn>)[method] = async (...args) => {
      const conn = await pool.getConnection();
      try {
        return await (conn[method] as QueryFn)(...args);
      } finally {
        // a no-op for a connection destroyed at the deadline
        conn.release();
      }
    };
  }
}

/** The start of a query's SQL (mysql2 takes a string or `{ sql }`), for the error that names it. */
function statementOf(query: unknown): string {
  const sql = typeof query === "string" ? query : String((query as { sql?: unknown } | null)?.sql ?? "");
  return sql.slice(0, 200);
}

/** `promise`, or ImError "unavailable" once `ms` passed (`onLate` gets it first). `what`: what was waited for. */
function withDeadline<T>(promise: Promise<T>, ms: number, what: string, onLate: (err: ImError) => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new ImError("unavailable", "MySQL did not answer in time", { cause: new Error(`no answer from MySQL within ${ms} ms: ${what}`) });
      onLate(err);
      reject(err);
    }, ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Apply pending migrations from drizzle/, on a connection of their own: a migration may take longer
 * than a query of the pool may. Nodes starting together take turns through a MySQL named lock, so
 * no two apply the same migration.
 */
export async function applyMigrations(url: string): Promise<void> {
  const conn = await mysql.createConnection(url);
  try {
    const [rows] = await conn.query("SELECT GET_LOCK('live_im_migrations', 60) AS got");
    if ((rows as Array<{ got: number }>)[0]?.got !== 1) throw new Error("could not take the migrations lock within 60 s");
    try {
      await migrate(drizzle(conn, { schema, mode: "default" }), { migrationsFolder: MIGRATIONS });
    } finally {
      await conn.query("SELECT RELEASE_LOCK('live_im_migrations')");
    }
  } finally {
    await conn.end();
  }
}
