// bench.js - times npm tiktoken (WebAssembly) on files, for tests/bench/bench_bpe.sh.
//   node tests/oracle/bench.js [--runs N] FILE...
// Prints one line per file: FILE BYTES TOKENS SECONDS, where SECONDS is the
// best of N runs of encode_ordinary() alone (file reading and UTF-8 decoding
// are not timed), after a warm-up run on the first 64 KB.
"use strict";
const fs = require("fs");
const oracle = require("./oracle.js");

const args = process.argv.slice(2);
let runs = 2;
if (args[0] === "--runs") { runs = Number(args[1]); args.splice(0, 2); }
for (const f of args) {
  const buf = fs.readFileSync(f);
  const text = buf.toString("utf8");
  oracle.enc.encode_ordinary(text.slice(0, 65536));
  let best = Infinity, n = 0;
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    n = oracle.enc.encode_ordinary(text).length;
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  console.log(`${f} ${buf.length} ${n} ${best.toFixed(6)}`);
}
