/**
 * Fails the test file if any promise rejection went unhandled while it ran: a proxy or adapter that
 * forgets a rejection would otherwise pass its tests and crash a real process.
 */
import { after } from "node:test";
import assert from "node:assert/strict";

export function failOnUnhandledRejections(): void {
  const rejections: unknown[] = [];
  const onRejection = (e: unknown) => rejections.push(e);
  process.on("unhandledRejection", onRejection);
  after(() => {
    process.off("unhandledRejection", onRejection);
    assert.deepEqual(rejections, [], "no unhandled rejection");
  });
}
