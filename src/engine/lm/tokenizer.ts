/**
 * Byte-level tokenizer: ids 0..255 are the UTF-8 bytes, followed by three ChatML specials.
 *
 * Why bytes: any string (any language, emoji, code) encodes without an unknown token, the vocabulary
 * is tiny (259, so wte stays small in a small model), and llama.cpp's `gpt2` tokenizer accepts a
 * byte-only vocabulary with no merges (see the GGUF design notes), so a trained model exports as is.
 * Why ChatML: the chat template below is exactly ChatML's, which llama.cpp renders with its built-in
 * template, so the exported model sees the same ids in llama.cpp as in training.
 *
 * Special tokens are never produced by encode(): text that spells "<|im_start|>" stays bytes, so user
 * content cannot forge a turn boundary.
 */
export const BYTE_TOKENS = 256;
export const ENDOFTEXT = 256;
export const IM_START = 257;
export const IM_END = 258;
export const VOCAB_SIZE = 259;

export const SPECIAL_TOKENS: Readonly<Record<number, string>> = {
  [ENDOFTEXT]: "<|endoftext|>",
  [IM_START]: "<|im_start|>",
  [IM_END]: "<|im_end|>",
};

const encoder = new TextEncoder();

/**
 * Text -> byte ids. TextEncoder semantics: lone surrogates become U+FFFD (bytes EF BF BD), so
 * decode(encode(s)) equals s.toWellFormed() and equals s for every well-formed string.
 */
export function encode(text: string): number[] {
  return Array.from(encoder.encode(text));
}

/**
 * Ids -> text. Byte runs are decoded as UTF-8 with U+FFFD for invalid sequences (never throws);
 * specials are rendered as their names unless `skipSpecial`. Ids outside the vocabulary throw.
 */
export function decode(ids: ArrayLike<number>, opts: { skipSpecial?: boolean } = {}): string {
  const decoder = new TextDecoder("utf-8", { fatal: false });
  let out = "";
  let bytes: number[] = [];
  const flush = () => {
    out += decoder.decode(Uint8Array.from(bytes));
    bytes = [];
  };
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (Number.isInteger(id) && id >= 0 && id < BYTE_TOKENS) {
      bytes.push(id);
      continue;
    }
    const name = SPECIAL_TOKENS[id];
    if (name === undefined) throw new RangeError(`decode: id ${id} at ${i} is not in the vocabulary [0, ${VOCAB_SIZE - 1}]`);
    flush();
    if (!opts.skipSpecial) out += name;
  }
  flush();
  return out;
}

/** The token's text as a vocabulary entry: a special's name, else the byte as a one-byte Latin-1 char. */
export function tokenText(id: number): string {
  return SPECIAL_TOKENS[id] ?? String.fromCharCode(id);
}

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface EncodedChat {
  ids: number[];
  /** 1 where ids[i] is an assistant token the model should learn to produce, else 0. */
  mask: Uint8Array;
}

/**
 * ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per message. The mask marks each assistant
 * content byte and its closing <|im_end|> (so the model learns where to stop); role headers, the
 * newlines between turns and all other turns are 0. `addGenerationPrompt` appends
 * `<|im_start|>assistant\n` for generation.
 */
export function encodeChat(messages: readonly ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): EncodedChat {
  const ids: number[] = [];
  const mask: number[] = [];
  const push = (xs: number[], m: number) => {
    for (const x of xs) {
      ids.push(x);
      mask.push(m);
    }
  };
  for (const [i, msg] of messages.entries()) {
    if (msg.role !== "system" && msg.role !== "user" && msg.role !== "assistant") {
      throw new RangeError(`encodeChat: messages[${i}].role = ${JSON.stringify(msg.role)}; expected "system", "user" or "assistant"`);
    }
    const learn = msg.role === "assistant" ? 1 : 0;
    push([IM_START, ...encode(`${msg.role}\n`)], 0);
    push([...encode(msg.content), IM_END], learn);
    push(encode("\n"), 0);
  }
  if (opts.addGenerationPrompt) push([IM_START, ...encode("assistant\n")], 0);
  return { ids, mask: Uint8Array.from(mask) };
}

/**
 * Next-token training pair from a token sequence and its mask: inputs ids[0..n-2], targets
 * ids[1..n-1], and the loss mask of each target.
 */
export function nextTokenPair(ids: ArrayLike<number>, mask?: ArrayLike<number>): { inputs: Int32Array; targets: Int32Array; mask: Uint8Array } {
  const n = Math.max(0, ids.length - 1);
  const inputs = new Int32Array(n);
  const targets = new Int32Array(n);
  const m = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    inputs[i] = ids[i]!;
    targets[i] = ids[i + 1]!;
    m[i] = mask === undefined ? 1 : mask[i + 1]! !== 0 ? 1 : 0;
  }
  return { inputs, targets, mask: m };
}
