// `bun run db:migrate`: create the database if missing and apply pending migrations (nodes also do
// this at start; CI runs it first so that a broken migration fails before the tests).
import { loadConfig } from "../config";
import { applyMigrations, ensureDatabase } from "./client";

const { db } = loadConfig();
await ensureDatabase(db.url);
await applyMigrations(db.url);
console.log(`migrations applied to ${new URL(db.url).pathname.slice(1)}`);
