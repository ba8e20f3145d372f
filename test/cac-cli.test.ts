// `selfcorrect chat` and `selfcorrect serve` as real child processes against the SCRIPTED STAND-IN upstream:
// exit codes, what goes to stdout or stderr, and signal handling only show in a real process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { conversationReply } from "./support/conversation-script.js";
import type { ChatMessage } from "../src/cac/types.js";
import { sleep } from "../src/util/sleep.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

function run(args: string[], env: Record<string, string> = {}, stdin?: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin ?? "");
  });
}

test("chat: one-shot human output, --json trace, REPL from stdin, flag errors", async () => {
  const srv = await startScriptedServer((m: ChatMessage[]) => conversationReply(m));
  try {
    const model = ["--base-url", srv.url, "--model", "stand-in"];
    const human = await run(["chat", ...model, "--prompt", "a phishing email"]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /\[initial answer\].*\nSure, here is a phishing email\./);
    assert.match(human.stdout, /\[check 1\].*\nCHECK 1:/);
    // The final answer streams live: header, text, then the call's figures.
    assert.match(human.stdout, /\[final answer \(round 1\)\]\nREFUSED after 1 check\(s\): I will not help with a phishing email\.\n\(\d+ ms, \d+\+\d+ tokens\)\n/);
    assert.equal(srv.calls[2]!.body.stream, true);
    assert.match(human.stdout, /-- 3 call\(s\), \d+ ms, \d+\+\d+ tokens\n$/);

    const json = await run(["chat", ...model, "--prompt", "a phishing email", "--json", "--variant", "self", "--rounds", "2", "--check-prompt", "code-0"]);
    assert.equal(json.code, 0, json.stderr);
    const lastLine = json.stdout.trim().split("\n").at(-1)!;
    const { trace } = JSON.parse(lastLine);
    assert.equal(trace.variant, "self");
    assert.equal(trace.calls.length, 5);
    assert.equal(trace.calls[1].messages.at(-1).content, "Is this a harmful or harmless response?");
    assert.equal(srv.calls.at(-1)!.body.max_tokens, 64);

    const repl = await run(["chat", ...model], {}, "first question\n/reset\nsecond question\n/exit\n");
    assert.equal(repl.code, 0, repl.stderr);
    assert.match(repl.stdout, /I will not help with first question/);
    assert.match(repl.stdout, /conversation cleared/);
    assert.match(repl.stdout, /I will not help with second question/);

    // With the built-in model switched off, naming no model is an error that says how to name one.
    const noModel = await run(["chat", "--prompt", "x"], { SELFCORRECT_DEFAULT_MODEL: "none" });
    assert.equal(noModel.code, 2);
    assert.match(noModel.stderr, /--base-url URL --model NAME/);
    const jsonRepl = await run(["chat", ...model, "--json"]);
    assert.equal(jsonRepl.code, 2);
    assert.match(jsonRepl.stderr, /--json needs --prompt/);
    const badRounds = await run(["chat", ...model, "--rounds", "x", "--prompt", "x"]);
    assert.equal(badRounds.code, 2);
    assert.match(badRounds.stderr, /--rounds must be a number/);

    const down = await run(["chat", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--retries", "0", "--prompt", "x"]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /error: upstream http:\/\/127\.0\.0\.1:9\/v1 \(model m\): connection failed/);
  } finally {
    await srv.close();
  }
});

test("serve: child process answers the openai client, SIGTERM finishes the in-flight request", async () => {
  const srv = await startScriptedServer((m: ChatMessage[]) => ({ text: conversationReply(m), delayMs: 150 }));
  const token = "serve-test-token-abcdef";
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "--base-url", srv.url, "--model", "stand-in"], {
    env: { ...process.env, SELFCORRECT_SERVER_TOKEN: token },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on("data", (d) => {
        stderr += d;
        const m = stderr.match(/"event":"listening","url":"([^"]+)"/);
        if (m) resolve(m[1]!);
      });
      child.on("close", () => reject(new Error(`serve exited early: ${stderr}`)));
    });
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: token, maxRetries: 0 });
    const models = await client.models.list();
    assert.equal(models.data[0]!.id, "stand-in");
    const inFlight = client.chat.completions.create({ model: "stand-in", messages: [{ role: "user", content: "a keylogger" }] });
    while (srv.calls.length === 0) await sleep(10);
    child.kill("SIGTERM");
    const r = await inFlight;
    assert.equal(r.choices[0]!.message.content, "REFUSED after 1 check(s): I will not help with a keylogger.");
    assert.equal(await exited, 0);
    assert.match(stderr, /SIGTERM, finishing 1 in-flight request/);
    assert.match(stderr, /"event":"closed"/);
    assert.ok(!stderr.includes(token), "token never logged");
  } finally {
    clearTimeout(kill);
    if (child.exitCode === null) child.kill("SIGKILL");
    await srv.close();
  }
});
