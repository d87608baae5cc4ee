// vocab_gguf.js - what an independent GGUF reader (npm @huggingface/gguf,
// pinned in package-lock.json) finds in a GGUF file's tokenizer keys: the
// model, counts, the end-of-text id, and for the ids given the bytes of
// each token (its byte-level string decoded with GPT-2's table; a control
// token as it stands), in hex. Prints one JSON object.
// usage: node tests/oracle/vocab_gguf.js FILE.gguf ID...
"use strict";
const path = require("path");
const { gguf } = require("@huggingface/gguf");

// GPT-2's byte -> character table (OpenAI's encoder.py), inverted.
const byteOf = new Map();
{
  const bs = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  bs.forEach((b, i) => byteOf.set(String.fromCodePoint(cs[i]), b));
}

(async () => {
  const file = path.resolve(process.argv[2]);
  const { metadata } = await gguf(file, { allowLocalFile: true });
  const tokens = metadata["tokenizer.ggml.tokens"], types = metadata["tokenizer.ggml.token_type"];
  const out = {
    version: metadata.version,
    model: metadata["tokenizer.ggml.model"],
    n_tokens: tokens.length,
    n_merges: metadata["tokenizer.ggml.merges"].length,
    eos: Number(metadata["tokenizer.ggml.eos_token_id"]),
    control: [],
    bytes: {},
  };
  types.forEach((t, i) => { if (Number(t) === 3) out.control.push(i); });
  for (const a of process.argv.slice(3)) {
    const id = Number(a), s = tokens[id];
    const raw = out.control.includes(id) ? Buffer.from(s, "utf8") : Buffer.from([...s].map((c) => byteOf.get(c)));
    out.bytes[id] = raw.toString("hex");
  }
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((e) => {
  console.error("vocab_gguf.js: " + e);
  process.exit(2);
});
