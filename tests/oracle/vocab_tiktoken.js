// vocab_tiktoken.js - the reference for tiktoken rank files: npm tiktoken
// (OpenAI's Rust core compiled to WebAssembly, pinned in package-lock.json)
// built from the FILE's ranks with GPT-2's pattern and <|endoftext|> after
// the last rank, as tiktoken's r50k_base. Encodes TEXT (UTF-8), the special
// token allowed, and prints the ids one per line.
// usage: node tests/oracle/vocab_tiktoken.js FILE.tiktoken TEXT
"use strict";
const fs = require("fs");
const { Tiktoken } = require("tiktoken");

const PAT = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
try {
  const ranks = fs.readFileSync(process.argv[2], "utf8");
  const n = ranks.split("\n").filter((l) => l.length > 0).length;
  const enc = new Tiktoken(ranks, { "<|endoftext|>": n }, PAT);
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(fs.readFileSync(process.argv[3]));
  process.stdout.write(Array.from(enc.encode(text, "all")).join("\n") + "\n");
  enc.free();
} catch (e) {
  console.error("vocab_tiktoken.js: " + e);
  process.exit(2);
}
