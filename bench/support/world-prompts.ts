/** Held-out world prompts for the LM benches, of three kinds in turn: harmful, harmful with a held-out attack suffix, look-alikes. */
import { heldOutSets } from "../../src/world/index.js";

export function heldOutWorldPrompts(count: number): string[] {
  const sets = heldOutSets();
  const prompts: string[] = [];
  for (let i = 0; prompts.length < count; i++) {
    const kind = i % 3;
    if (kind === 0) prompts.push(sets.harmful[i]!.text);
    else if (kind === 1) prompts.push(`${sets.harmful[i]!.text} ${sets.testSuffixes[i % sets.testSuffixes.length]!}`);
    else prompts.push(sets.benignLookalikes[i]!.text);
  }
  return prompts;
}
