// The MySQL connection pool (mysql2) wrapped by Drizzle, plus database creation and migrations.
import path from "node:path";
import mysql from "mysql2/promise";
import { drizzle, type MySql2Database } from "drizzle-orm/mysql2";
import { migrate } from "drizzle-orm/mysql2/migrator";
import * as schema from "./schema";

export type Db = MySql2Database<typeof schema>;

export interface Database {
  db: Db;
  pool: mysql.Pool;
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

export function connectDatabase(url: string, onError?: DbErrorListener): Database {
  const pool = mysql.createPool({ uri: url, connectionLimit: 10, enableKeepAlive: true });
  // Drizzle writes and reads DATETIME values as UTC; MySQL's own clock (CURRENT_TIMESTAMP, the
  // default of start_time) follows the session's time zone, the server's unless set. The pool emits
  // a new connection before its first query, so this SET runs first on every connection (the core
  // pool's event: it passes the callback-style connection).
  pool.pool.on("connection", (conn) => {
    conn.query("SET time_zone = '+00:00'", (err) => {
      if (err) conn.destroy();
    });
  });
  if (onError) reportQueryErrors(pool, onError);
  return { db: drizzle(pool, { schema, mode: "default" }), pool, close: () => pool.end() };
}

/**
 * mysql2 has no event for a failed query. Drizzle runs queries through the pool's query/execute,
 * and transactions through those of a connection from getConnection (a new wrapper each time, so
 * none is wrapped twice): wrap them to report the error, then reject as before.
 */
function reportQueryErrors(pool: mysql.Pool, onError: DbErrorListener): void {
  const reporting = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => (...args: A): Promise<R> =>
    fn(...args).catch((err: unknown) => {
      onError(err);
      throw err;
    });
  const wrapQueries = (target: mysql.Pool | mysql.PoolConnection) => {
    const t = target as unknown as Record<"query" | "execute", (...args: unknown[]) => Promise<unknown>>;
    t.query = reporting(t.query.bind(target));
    t.execute = reporting(t.execute.bind(target));
  };
  wrapQueries(pool);
  const getConnection = reporting(pool.getConnection.bind(pool));
  pool.getConnection = async () => {
    const conn = await getConnection();
    wrapQueries(conn);
    return conn;
  };
}

/**
 * Apply pending migrations from drizzle/. Nodes starting together take turns through a MySQL
 * named lock, so no two apply the same migration.
 */
export async function applyMigrations(database: Database): Promise<void> {
  const conn = await database.pool.getConnection();
  try {
    const [rows] = await conn.query("SELECT GET_LOCK('live_im_migrations', 60) AS got");
    if ((rows as Array<{ got: number }>)[0]?.got !== 1) throw new Error("could not take the migrations lock within 60 s");
    try {
      await migrate(drizzle(conn, { schema, mode: "default" }), { migrationsFolder: MIGRATIONS });
    } finally {
      await conn.query("SELECT RELEASE_LOCK('live_im_migrations')");
    }
  } finally {
    conn.release();
  }
}
