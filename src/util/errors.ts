import type { ZodError } from "zod";

/** Exit codes of the `selfcorrect` CLI. Scripts can rely on these. */
export const ExitCode = {
  ok: 0,
  /** The work ran and failed (an upstream error, a failed check, a crash). */
  failure: 1,
  /** Bad input: a flag, a config field, a data file. Nothing was run. */
  usage: 2,
  /** Interrupted by the user (Ctrl-C); state was saved. */
  interrupted: 130,
} as const;

/**
 * An error caused by the user's input, with a message that names the field and the fix.
 * The CLI prints only the message (no stack) and exits with ExitCode.usage.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.usage) {
    super(message);
    this.name = "UserError";
    this.exitCode = exitCode;
  }
}

/** One line per issue: `field.path: message`, for a zod validation failure. */
export function formatZodError(error: ZodError, what = "input"): string {
  const lines = error.issues.map((issue) => {
    // a scalar (a flag value) has no path: `what` already names it
    return issue.path.length ? `  ${issue.path.map(String).join(".")}: ${issue.message}` : `  ${issue.message}`;
  });
  return `invalid ${what}:\n${lines.join("\n")}`;
}

/** Parses with a zod schema and throws a UserError naming every bad field. */
export function parseOrThrow<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: ZodError } },
  value: unknown,
  what: string,
): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new UserError(formatZodError(r.error, what));
  return r.data;
}
