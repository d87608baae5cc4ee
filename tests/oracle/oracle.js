// oracle.js - the reference side of gpt2in's tokenizer tests: OpenAI's
// tiktoken "gpt2" encoding (npm package, Rust core compiled to WebAssembly,
// version pinned in package-lock.json), plus the one rule tiktoken has no
// notion of: how invalid UTF-8 is tokenized (see bpe/bpe.h).
//
// Works on bytes (Buffer/Uint8Array) so that invalid UTF-8 can be expressed.
"use strict";
const { get_encoding, Tiktoken } = require("tiktoken");

// The installed tiktoken version (its package.json is not exported).
const VERSION = JSON.parse(require("fs").readFileSync(
  require("path").join(__dirname, "node_modules", "tiktoken", "package.json"), "utf8")).version;
const EOT = "<|endoftext|>";
const EOT_ID = 50256;
const enc = get_encoding("gpt2");
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });  // keep a leading U+FEFF

// GPT-2's ids for single bytes are not the byte values (ids follow the
// byte->unicode table), so ask the vocabulary.
const byteToken = new Uint32Array(256);
for (let b = 0; b < 256; b++) byteToken[b] = enc.encode_single_token(Uint8Array.of(b));

// Length of the well-formed UTF-8 sequence starting at buf[i] (Unicode
// Table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
function utf8SeqLen(buf, i) {
  const n = buf.length, b0 = buf[i];
  const cont = (k) => i + k < n && (buf[i + k] & 0xc0) === 0x80;
  if (b0 < 0x80) return 1;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const b1 = buf[i + 1];
    if (b0 === 0xe0 && b1 < 0xa0) return 0;  // overlong
    if (b0 === 0xed && b1 > 0x9f) return 0;  // surrogate
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const b1 = buf[i + 1];
    if (b0 === 0xf0 && b1 < 0x90) return 0;  // overlong
    if (b0 === 0xf4 && b1 > 0x8f) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Splits bytes into segments: {valid: true, text} for maximal runs of
// well-formed UTF-8 and {valid: false, byte, offset} for each byte that does
// not start a well-formed sequence.
function segments(buf) {
  const out = [];
  let start = 0, i = 0;
  while (i < buf.length) {
    const k = utf8SeqLen(buf, i);
    if (k) { i += k; continue; }
    if (i > start) out.push({ valid: true, offset: start, text: utf8.decode(buf.subarray(start, i)) });
    out.push({ valid: false, offset: i, byte: buf[i] });
    start = ++i;
  }
  if (i > start) out.push({ valid: true, offset: start, text: utf8.decode(buf.subarray(start, i)) });
  return out;
}

class SpecialError extends Error {}
class Utf8Error extends Error {}

// The ids gpt2in must produce for `buf` (Buffer/Uint8Array or string).
// opts.special: "error" (default; throws SpecialError naming the byte offset),
// "allow" (<|endoftext|> -> 50256, each side encoded alone) or "text".
// opts.strict: invalid UTF-8 throws Utf8Error naming the first bad byte.
function encode(buf, opts = {}) {
  if (typeof buf === "string") buf = Buffer.from(buf, "utf8");
  buf = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const special = opts.special || "error";
  const ids = [];
  for (const seg of segments(buf)) {
    if (!seg.valid) {
      if (opts.strict) {
        const e = new Utf8Error(`invalid UTF-8 at byte ${seg.offset}`);
        e.offset = seg.offset;
        throw e;
      }
      ids.push(byteToken[seg.byte]);
      continue;
    }
    if (special === "text") {
      ids.push(...enc.encode_ordinary(seg.text));
      continue;
    }
    const parts = seg.text.split(EOT);
    if (special === "error" && parts.length > 1) {
      const e = new SpecialError(`<|endoftext|> at byte ${seg.offset + Buffer.byteLength(parts[0])}`);
      e.offset = seg.offset + Buffer.byteLength(parts[0]);
      throw e;
    }
    parts.forEach((p, k) => {
      if (k > 0) ids.push(EOT_ID);
      if (p.length) ids.push(...enc.encode_ordinary(p));
    });
  }
  return ids;
}

// tiktoken's own calls, for vectors that need no byte handling.
function encodeOrdinary(text) { return Array.from(enc.encode_ordinary(text)); }
function encodeAllowed(text) { return Array.from(enc.encode(text, "all")); }
function decode(ids) { return Buffer.from(enc.decode(Uint32Array.from(ids))); }
function tokenBytes(id) { return Buffer.from(enc.decode_single_token_bytes(id)); }

// How tiktoken's regex engine classes code points: a throwaway encoding whose
// vocabulary is the 256 bytes and whose pattern is one class; tiktoken skips
// text no pattern matches, so encoding a string keeps exactly the members.
// Same WebAssembly module, same regex engine, same Unicode tables as "gpt2".
function classProbe(pattern) {
  let bfe = "";
  for (let b = 0; b < 256; b++) bfe += Buffer.from([b]).toString("base64") + " " + b + "\n";
  const t = new Tiktoken(bfe, {}, pattern);
  const td = new TextDecoder("utf-8", { ignoreBOM: true });
  return (codePoints) => {
    const out = new Set();
    for (let i = 0; i < codePoints.length; i += 32768) {
      const s = String.fromCodePoint(...codePoints.slice(i, i + 32768));
      for (const c of td.decode(t.decode(t.encode_ordinary(s)))) out.add(c.codePointAt(0));
    }
    return out;
  };
}

module.exports = {
  VERSION, EOT, EOT_ID, enc, byteToken, utf8SeqLen, segments, encode, encodeOrdinary, encodeAllowed,
  decode, tokenBytes, classProbe, SpecialError, Utf8Error,
};
