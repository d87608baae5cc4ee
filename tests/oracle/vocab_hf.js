// vocab_hf.js - the reference for tokenizer.json vocabularies: Hugging Face
// tokenizers (its Rust core through the npm binding @anush008/tokenizers,
// pinned in package-lock.json). Encodes FILE (UTF-8 text) with TOKENIZER
// and prints the ids, one per line. Added tokens (<|endoftext|>) are split
// out as Hugging Face does, which is gpt2in's --special allow; no special
// tokens are added around the text.
// usage: node tests/oracle/vocab_hf.js TOKENIZER.json FILE
"use strict";
const fs = require("fs");
const { Tokenizer } = require("@anush008/tokenizers");

(async () => {
  const tok = Tokenizer.fromFile(process.argv[2]);
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(fs.readFileSync(process.argv[3]));
  const enc = await tok.encode(text, null, { addSpecialTokens: false });
  process.stdout.write(enc.getIds().join("\n") + "\n");
})().catch((e) => {
  console.error("vocab_hf.js: " + e);
  process.exit(2);
});
