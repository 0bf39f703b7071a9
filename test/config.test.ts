// config.ts: the one reader of the environment. Numbers are checked where they are read.
import { expect, test } from "bun:test";
import { loadConfig } from "../src/config";

test("INTAKE_LINGER_MS: 10 ms unless set, 0 allowed, a negative or non-integer value refused", () => {
  expect(loadConfig({}).delivery.intakeLingerMs).toBe(10);
  expect(loadConfig({ INTAKE_LINGER_MS: "0" }).delivery.intakeLingerMs).toBe(0);
  expect(loadConfig({ INTAKE_LINGER_MS: "25" }).delivery.intakeLingerMs).toBe(25);
  expect(() => loadConfig({ INTAKE_LINGER_MS: "-1" })).toThrow(/INTAKE_LINGER_MS/);
  expect(() => loadConfig({ INTAKE_LINGER_MS: "soon" })).toThrow(/INTAKE_LINGER_MS/);
});
