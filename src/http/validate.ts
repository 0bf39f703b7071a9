// Request validation with zod: a failure is a 400 with the problems listed.
import type { Context } from "hono";
import { z } from "zod";
import { ImError } from "../protocol/errors";

/** A number in a path or query string: decimal digits only ("0x10" or "1e3" are not one, as for a JWT's sub). */
export const decimal = z.string().regex(/^\d{1,16}$/, "expected decimal digits").transform(Number);

function check<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new ImError("bad_request", r.error.issues.map((i) => `${where}${i.path.length ? "." + i.path.join(".") : ""}: ${i.message}`).join("; "));
  }
  return r.data;
}

export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let value: unknown = {};
  const text = await c.req.text();
  if (text.length > 0) {
    try {
      value = JSON.parse(text);
    } catch {
      throw new ImError("bad_request", "body is not JSON");
    }
  }
  return check(schema, value, "body");
}

export function params<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  return check(schema, c.req.param(), "path");
}

export function query<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  return check(schema, c.req.query(), "query");
}
