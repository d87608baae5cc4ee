// shard_check.js - the token stream of `gpt2in shard`'s shards against npm
// tiktoken: every document read here independently (JSON.parse per line,
// lines split at \n, or whole files) and encoded with encode_ordinary, each
// after <|endoftext|>, as llm.c's fineweb.py does. Run by tests/test_shard_oracle.sh.
//
//   node tests/oracle/shard_check.js DIR NAME KIND:FILE...
// KIND: jsonl (field "text"), lines (--split-lines), text (one document);
// FILE may end in .gz. Exit 0 when the shards' tokens (in manifest order)
// equal the expected stream, 1 (with the first difference) otherwise.
"use strict";
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");
const { get_encoding } = require("tiktoken");

const enc = get_encoding("gpt2");
const EOT = 50256;
const [dir, name, ...specs] = process.argv.slice(2);
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const expected = [];
let docs = 0;
function addDoc(text) {
  expected.push(EOT);
  for (const t of enc.encode_ordinary(text)) expected.push(t);
  docs++;
}
for (const spec of specs) {
  const i = spec.indexOf(":");
  const kind = spec.slice(0, i), file = spec.slice(i + 1);
  let buf = fs.readFileSync(file);
  if (file.endsWith(".gz")) buf = zlib.gunzipSync(buf);
  const text = utf8.decode(buf);
  if (kind === "text") addDoc(text);
  else
    for (const line of text.split("\n")) {
      if (kind === "lines" && line.length) addDoc(line);
      if (kind === "jsonl" && line.trim().length) addDoc(JSON.parse(line).text);
    }
}

const man = JSON.parse(fs.readFileSync(path.join(dir, name + "_manifest.json"), "utf8"));
const got = [];
for (const s of man.shards) {
  const b = fs.readFileSync(path.join(dir, s.file));
  const n = b.readInt32LE(8);
  for (let k = 0; k < n; k++) got.push(b.readUInt16LE(1024 + 2 * k));
}
let bad = got.length !== expected.length || man.documents !== docs;
let first = -1;
for (let k = 0; k < Math.min(got.length, expected.length); k++)
  if (got[k] !== expected[k]) { first = k; bad = true; break; }
if (bad) {
  console.log(`MISMATCH: ${got.length} tokens in the shards, ${expected.length} expected; ` +
              `${man.documents} documents in the manifest, ${docs} read`);
  if (first >= 0)
    console.log(`first difference at token ${first}: got ${got.slice(first, first + 8)} ` +
                `expected ${expected.slice(first, first + 8)}`);
  process.exit(1);
}
console.log(`ok: ${docs} documents, ${got.length} tokens, ${man.shards.length} shards equal tiktoken's encode_ordinary`);
