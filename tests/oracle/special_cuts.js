// special_cuts.js DIR - writes the texts of tests/test_special_cuts.sh and
// npm tiktoken's ids for them: <|endoftext|> across the places where gpt2in
// cuts text (the stream's block edge at 1 MiB x threads, the threads' parts).
// For each case NAME: NAME.txt, NAME.allow (tiktoken encode(text, "all"),
// one "ID START END" line per token, END exclusive), NAME.error (the byte
// offset of the first <|endoftext|>, the error gpt2in must report by
// default) and, for every third case, NAME.text (encode_ordinary, ids one
// per line). Prints one line per case: NAME THREADS...
"use strict";
const fs = require("fs");
const path = require("path");
const { enc, EOT } = require("./oracle.js");

const dir = process.argv[2];
const MiB = 1 << 20;
let cases = 0;
const lenOf = new Map();
function tokenLen(id) {
  let n = lenOf.get(id);
  if (n === undefined) lenOf.set(id, (n = enc.decode_single_token_bytes(id).length));
  return n;
}

function write(name, text, threads) {
  const buf = Buffer.from(text, "utf8");
  fs.writeFileSync(path.join(dir, name + ".txt"), buf);
  const allow = enc.encode(text, "all");
  const lines = [];
  let at = 0;
  for (const id of allow) {
    const n = tokenLen(id);
    lines.push(`${id} ${at} ${at + n}`);
    at += n;
  }
  if (at !== buf.length) throw new Error(`${name}: tokens cover ${at} of ${buf.length} bytes`);
  fs.writeFileSync(path.join(dir, name + ".allow"), lines.join("\n") + "\n");
  if (cases++ % 3 === 0)
    fs.writeFileSync(path.join(dir, name + ".text"), Array.from(enc.encode_ordinary(text)).join("\n") + "\n");
  fs.writeFileSync(path.join(dir, name + ".error"), Buffer.byteLength(text.slice(0, text.indexOf(EOT))) + "\n");
  console.log(name, ...threads);
}

// 1. One token starting at each offset from 14 bytes before the block edge
// to the edge (1 MiB for one thread, 2 MiB for two), in prose.
for (const threads of [1, 2]) {
  const edge = threads * MiB;
  const filler = "hello world ".repeat(Math.ceil(edge / 12));
  for (let at = edge - 14; at <= edge; at += threads + 1)
    write(`edge${threads}_${at}`, filler.slice(0, at) + EOT + " tail", [threads]);
}

// 2. A text dense in the token and its prefixes, past 2 MiB, behind a pad of
// 0..P-1 bytes, so that the parts of 2, 3 and 7 threads (and the 2 MiB edge)
// meet every alignment of the unit.
const units = ["hello world hello world ab" + EOT, " x" + EOT + "<|endoftext <|end|>endoftext|> 12<|" + EOT + "|>\n"];
units.forEach((unit, u) => {
  const body = unit.repeat(Math.ceil((2 * MiB + 4096) / unit.length));
  for (let pad = 0; pad < unit.length; pad += 6)
    write(`dense${u}_${pad}`, "x".repeat(pad) + body, [2, 3, 7]);
});
