// A tiny flag parser: `--name=value` or `--name value`. Each flag's type comes from its default, so a
// script's defaults double as its documentation (`--help` prints them).

type Flag = number | string | boolean | number[];

export function parseArgs<T extends Record<string, Flag>>(defaults: T, argv = process.argv.slice(2)): T {
  const out: Record<string, Flag> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") {
      console.log("flags (default):");
      for (const [k, v] of Object.entries(defaults)) console.log(`  --${k}=${Array.isArray(v) ? v.join(",") : String(v)}`);
      process.exit(0);
    }
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!(name in defaults)) throw new Error(`unknown flag --${name} (try --help)`);
    const def = defaults[name];
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (typeof def === "boolean") raw = "true";
    else raw = argv[++i] ?? "";
    out[name] = convert(name, def, raw);
  }
  return out as T;
}

function convert(name: string, def: Flag, raw: string): Flag {
  const num = (s: string) => {
    const n = Number(s);
    if (s.trim() === "" || !Number.isFinite(n)) throw new Error(`--${name}: not a number: ${s}`);
    return n;
  };
  if (typeof def === "number") return num(raw);
  if (typeof def === "boolean") return raw === "true" || raw === "1";
  if (Array.isArray(def)) return raw.split(",").filter(Boolean).map(num);
  return raw;
}

/** The command line as typed, for the report header. */
export function commandLine(): string {
  const script = process.argv[1] ? process.argv[1].replace(`${process.cwd()}/`, "") : "?";
  return ["bun", script, ...process.argv.slice(2)].join(" ");
}
