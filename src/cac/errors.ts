/**
 * The typed errors of Checking-as-Context, and how to render them where strangers can read them.
 *
 * An upstream's URL can carry credentials (user:password@, ?api-key=) and its error text can echo keys
 * or internal addresses, so an UpstreamError keeps three things apart: `message` (for the operator's own
 * terminal, as `selfcorrect chat` prints it), `publicMessage` (safe for a remote client: what failed and
 * how often, never the URL or the upstream's words) and `upstreamMessage` (the upstream's text, untrusted).
 */

export type UpstreamFailure = "http" | "timeout" | "connection" | "malformed" | "too_large";

export interface UpstreamErrorDetails {
  kind: UpstreamFailure;
  attempts: number;
  /** A safe summary: "HTTP 503", "timed out after 600 ms", "connection failed (ECONNRESET)". */
  detail: string;
  /** The upstream, already redacted, e.g. "http://10.0.0.5:8080/v1 (model m)". */
  where: string;
  status?: number;
  /** The upstream's own error text, verbatim. Untrusted: never send it to a remote client. */
  upstreamMessage?: string;
  cause?: unknown;
}

/** The upstream failed for good (after retries, or with a non-retryable status). */
export class UpstreamError extends Error {
  readonly kind: UpstreamFailure;
  readonly status?: number;
  readonly attempts: number;
  readonly detail: string;
  readonly upstreamMessage?: string;
  constructor(d: UpstreamErrorDetails) {
    const gaveUp = d.attempts > 1 ? ` (gave up after ${d.attempts} attempts)` : "";
    super(`upstream ${d.where}: ${d.detail}${d.upstreamMessage ? `: ${d.upstreamMessage}` : ""}${gaveUp}`, { cause: d.cause });
    this.name = "UpstreamError";
    this.kind = d.kind;
    this.attempts = d.attempts;
    this.detail = d.detail;
    if (d.status !== undefined) this.status = d.status;
    if (d.upstreamMessage !== undefined) this.upstreamMessage = d.upstreamMessage;
  }

  /** What a remote client may see: no URL, no credentials, no upstream text. */
  get publicMessage(): string {
    return `upstream model failed: ${this.detail}${this.attempts > 1 ? ` (gave up after ${this.attempts} attempts)` : ""}`;
  }

  /** A stable machine-readable code, e.g. "upstream_http_503", "upstream_timeout". */
  get code(): string {
    return this.kind === "http" ? `upstream_http_${this.status ?? "error"}` : `upstream_${this.kind}`;
  }
}

/**
 * A URL fit for logs and messages: no user:password part, every query value replaced by "***" (keys
 * such as ?api-key= travel there), no fragment. Text that does not parse as a URL goes through
 * redactSecrets instead.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return redactSecrets(url);
  }
  if (!u.username && !u.password && !u.search && !u.hash) return url;
  u.username = "";
  u.password = "";
  u.hash = "";
  const keys = [...new Set(u.searchParams.keys())];
  u.search = keys.length ? "?" + keys.map((k) => `${encodeURIComponent(k)}=***`).join("&") : "";
  return u.toString().replace(/\/$/, "");
}

const SECRET_PATTERNS: [RegExp, string][] = [
  // scheme://user:password@host
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*:[^\s/@]*@/gi, "$1***@"],
  // key-like query or form parameters
  [/([?&;](?:api[-_]?key|key|token|access[-_]?token|secret|password|sig|signature|auth)=)[^&\s"'#]+/gi, "$1***"],
  // Authorization values
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}/gi, "$1 ***"],
  // Typical API key shapes (OpenAI-style sk-..., generic long tokens after "key")
  [/\bsk-[A-Za-z0-9_-]{8,}/g, "sk-***"],
];

/** Removes credentials that commonly leak through error texts and URLs; for log lines. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [re, rep] of SECRET_PATTERNS) out = out.replace(re, rep);
  return out;
}
