/**
 * The one way a command turns commander's raw option values into typed, validated flags:
 *
 *   const schema = z.object({ steps: flag.int("--steps", 1, 1e7), lr: flag.number("--lr", 0, 1) });
 *   const f = parseFlags(schema, cmd.opts());
 *
 * Commander hands every value over as a string (or undefined when absent); the builders coerce and
 * bound them, and each message names the flag and the range it accepts. parseFlags drops undefined
 * values first, so a schema's .default() applies to an absent flag, and throws one UserError that lists
 * every bad flag, which the CLI prints and exits 2 on.
 */
import { z } from "zod";
import { UserError } from "../util/errors.js";

function int(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return z.coerce
    .number({ message: `${name} must be a number` })
    .int({ message: `${name} must be a whole number` })
    .min(min, { message: `${name} must be at least ${min}` })
    .max(max, { message: `${name} must be at most ${max}` });
}

function number(name: string, min = -Infinity, max = Infinity) {
  return z.coerce
    .number({ message: `${name} must be a number` })
    .refine(Number.isFinite, { message: `${name} must be a finite number` })
    .refine((v) => v >= min, { message: `${name} must be at least ${min}` })
    .refine((v) => v <= max, { message: `${name} must be at most ${max}` });
}

function text(name: string) {
  return z.string({ message: `${name} needs a value` }).min(1, { message: `${name} must not be empty` });
}

function choice<const T extends readonly [string, ...string[]]>(name: string, values: T) {
  return z.enum(values, { message: `${name} must be one of ${values.join(", ")}` });
}

/** A comma-separated list ("a, b,c" -> ["a", "b", "c"]); empty entries are dropped. */
function list(name: string) {
  return z
    .string({ message: `${name} needs a comma-separated list` })
    .transform((s) =>
      s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    );
}

/** Commander gives `true` for a present boolean flag and undefined (or false for --no-x) otherwise. */
function bool() {
  return z.boolean().default(false);
}

/** Builders for the usual flag kinds; each message names the flag. */
export const flag = { int, number, text, choice, list, bool } as const;

function kebab(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Validates raw commander options against a schema; throws a UserError naming every bad flag. */
export function parseFlags<S extends z.ZodType>(schema: S, raw: object): z.output<S> {
  const defined: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) defined[k] = v;
  const r = schema.safeParse(defined);
  if (r.success) return r.data;
  const lines = r.error.issues.map((issue) => {
    if (issue.message.startsWith("--")) return issue.message;
    const key = issue.path[0];
    return typeof key === "string" ? `${kebab(key)}: ${issue.message}` : issue.message;
  });
  throw new UserError(lines.join("\n"));
}
