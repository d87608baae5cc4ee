// oracle_batch.js - the npm tiktoken side of the Python package's tests, one
// process for a whole batch. stdin: a JSON array of [base64 bytes, special]
// with special "text", "allow" or "error"; stdout: a JSON array, per input
// the ids or the string "special" (tiktoken refuses <|endoftext|>).
// Bytes that are not valid UTF-8 follow gpt2in's byte rule (tests/oracle/oracle.js).
"use strict";
const path = require("path");
const oracle = require(path.join(__dirname, "..", "..", "..", "tests", "oracle", "oracle.js"));

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => { input += d; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([b64, special]) => {
    const buf = Buffer.from(b64, "base64");
    let text = null;
    try { text = strict.decode(buf); } catch (e) { text = null; }
    try {
      if (text === null) return Array.from(oracle.encode(buf, { special }));
      // Valid UTF-8: tiktoken's own calls.
      if (special === "text") return Array.from(oracle.enc.encode_ordinary(text));
      if (special === "allow") return Array.from(oracle.enc.encode(text, "all"));
      return Array.from(oracle.enc.encode(text));
    } catch (e) {
      if (e instanceof oracle.SpecialError || /special token that is not allowed/i.test(String(e))) return "special";
      throw e;
    }
  });
  process.stdout.write(JSON.stringify(out));
});
