// differential.js - random strings through gpt2in and through tiktoken (npm,
// WebAssembly); any difference is a bug in one of them. Run by
// tests/test_differential.sh, which passes utf8proc's class table.
//
//   node tests/oracle/differential.js UCLASS_FILE
// env: GPT2IN (program), GPT2IN_DIFF_SEED (reproduce a run), GPT2IN_DIFF_N
// (strings; default 30000, 3000 when SANITIZED=1; a tenth also run alone).
//
// Two ways in: most strings go in batches, joined by byte 0xFF: 0xFF never
// occurs in UTF-8, so by gpt2in's rule it is a piece of its own (token 187,
// which no valid text produces) and the strings between encode exactly as
// each alone would; gpt2in's output split at 187 gives each string's ids.
// A tenth of the strings also run alone, one process each, so that a bug in
// the invalid-byte path cannot hide the rest. Last, all of them joined by
// <|endoftext|> and its prefixes into one text of megabytes, under
// --special allow on 1, 2 and 3 threads.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFile } = require("child_process");
const oracle = require("./oracle.js");

const GPT2IN = process.env.GPT2IN || "build/gpt2in";
const SANITIZED = process.env.SANITIZED === "1";
const N = Number(process.env.GPT2IN_DIFF_N || (SANITIZED ? 3000 : 30000));
const SEED = process.env.GPT2IN_DIFF_SEED ? Number(process.env.GPT2IN_DIFF_SEED) : (Date.now() % 1000000007) >>> 0;
const SEP = 0xff, SEP_ID = oracle.byteToken[SEP];

// ---- which code points both sides class alike --------------------------------
// utf8proc (what gpt2in uses) is Unicode 15.0; tiktoken's regex may be newer.
// A code point assigned after 15.0 is "other" for gpt2in but may be a letter
// or number for tiktoken: the two are then both right for their Unicode
// version, so such code points are left out of the draw (and counted).
const ucFile = process.argv[2];
const uc = fs.readFileSync(ucFile, "latin1").split("\n");
const ucTable = uc[0], ucVersion = uc[1];
const all = [];
for (let c = 0; c < 0x110000; c++) if (c < 0xd800 || c > 0xdfff) all.push(c);
const tkL = oracle.classProbe("\\p{L}")(all), tkN = oracle.classProbe("\\p{N}")(all), tkS = oracle.classProbe("\\s")(all);
const tkClass = (c) => (tkL.has(c) ? "L" : tkN.has(c) ? "N" : tkS.has(c) ? "S" : "O");
const ucClass = (c) => { const k = ucTable[c]; return k === "M" || k === "U" ? "O" : k; };
const pools = { L: [], N: [], S: [], M: [], O: [], U: [] };
const excluded = {};
for (const c of all) {
  const a = ucClass(c), b = tkClass(c);
  if (a !== b) {
    const k = `${ucTable[c] === "U" ? "unassigned" : ucTable[c]} in utf8proc ${ucVersion}, ${b} in tiktoken`;
    (excluded[k] ||= []).push(c);
    continue;
  }
  pools[ucTable[c]].push(c);
}
// The oracle's Unicode version, by probing letters new in each version.
const probes = [["15.1", 0x2ebf0], ["16.0", 0x10d4a], ["17.0", 0x10940]];
let tkVersion = "15.0 or older (no 15.1 letter)";
for (let k = 0; k < probes.length; k++) {
  if (!tkL.has(probes[k][1])) break;
  tkVersion = k + 1 < probes.length ? `${probes[k][0]} (knows U+${probes[k][1].toString(16).toUpperCase()}, not ${probes[k + 1][0]}'s U+${probes[k + 1][1].toString(16).toUpperCase()})`
    : `${probes[k][0]} or newer`;
}

// ---- random strings ----------------------------------------------------------------
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(SEED);
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];
const cp = (c) => String.fromCodePoint(c);
const okCp = (c) => { const k = ucTable[c]; return k && k !== "X" && tkClass(c) === ucClass(c); };
const range = (a, b) => { const r = []; for (let c = a; c <= b; c++) if (okCp(c)) r.push(cp(c)); return r; };

const WS = [..."\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"];
const NOT_WS = [..."\u001c\u001d\u001e\u001f\u180e\u200b\u200c\u200d\u2060\ufeff"];
const APOS = ["'", "'", "'", "\u2019", "\u2018", "`", "\u02bc"];
const CONTR = ["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "VE", "M", "LL", "D", "Re", "rE", "Ll", "lL", "Ve"];
const ASCII_PUNCT = [..."!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"];
const DIGITS = [..."0123456789", ..."\u00b2\u00b3\u00b9\u00bc\u00bd\u00be\u2070\u2074\u2080\u2153\u2160\u2161\u216b\u2170\u2460\u2473\u24ea\u3007\u3021\u0660\u0669\u06f0\u0966\u09e6\u0e50\uff10\uff19", cp(0x1d7ce), cp(0x10107), cp(0x1f100), cp(0x12400)];
const MARKS = [..."\u0300\u0301\u0302\u0308\u0327\u0345\u034f\u0483\u0591\u05b0\u064b\u0670\u093c\u093e\u094d\u0e31\u0e48\u1ab0\u1dc0\u20d0\u20dd\u302a\u3099\ufe0f\ufe20", cp(0x1d165), cp(0xe0100)];
const SCRIPTS = [[0x41, 0x5a], [0x61, 0x7a], [0xc0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x531, 0x587], [0x5d0, 0x5ea],
  [0x620, 0x64a], [0x904, 0x939], [0x985, 0x9b9], [0xe01, 0xe30], [0xe81, 0xeb0], [0x10a0, 0x10ff], [0x1100, 0x11ff],
  [0x3041, 0x3096], [0x30a1, 0x30fa], [0x4e00, 0x4eff], [0xac00, 0xacff], [0x1e00, 0x1eff], [0x16a0, 0x16ea],
  [0x13a0, 0x13f5], [0x1401, 0x14ff], [0x10330, 0x1034a], [0x1d400, 0x1d4ff], [0x20000, 0x200ff], [0xff21, 0xff5a], [0xff66, 0xff9d]]
  .map(([a, b]) => range(a, b));
const EMOJI = ["\u{1f600}", "\u{1f44d}\u{1f3fd}", "\u{1f468}\u200d\u{1f469}\u200d\u{1f467}", "\u{1f1fa}\u{1f1f8}", "\u2764\ufe0f",
  "\u{1f3f3}\ufe0f\u200d\u{1f308}", "1\ufe0f\u20e3", "\u{1f3f4}\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}", "\u{1f525}", "\u2728",
  "\u{1f9d1}\u{1f3ff}\u200d\u{1f4bb}", "\u263a\ufe0e", "\u{1f44b}\u{1f3fb}"];
const WORDS = ["the", " the", "hello", " world", "Don", "don", "it", "I", "you", "ing", "tion", "http://x.y/z?a=1&b=2", "\u00e9t\u00e9", "na\u0308ive", "\u043f\u0440\u0438\u0432\u0435\u0442", "\u4f60\u597d", "\u3053\u3093\u306b\u3061\u306f", "<|", "|>", "endoftext"];

const anyOf = (k) => cp(pick(pools[k]));
// One atom: a short piece of one kind.
function atom() {
  const r = int(100);
  if (r < 14) return pick(WS);
  if (r < 17) return pick(NOT_WS);
  if (r < 25) return pick(APOS) + (rnd() < 0.8 ? pick(CONTR) : "");
  if (r < 32) return pick(DIGITS);
  if (r < 38) return pick(MARKS);
  if (r < 50) return pick(pick(SCRIPTS));
  if (r < 58) return pick(ASCII_PUNCT);
  if (r < 63) return pick(EMOJI);
  if (r < 70) return pick(WORDS);
  if (r < 76) return anyOf("L");
  if (r < 79) return anyOf("N");
  if (r < 82) return anyOf("M");
  if (r < 88) return anyOf("O");
  if (r < 90) return anyOf("U");
  if (r < 93) return " ";
  return String.fromCharCode(0x20 + int(95));  // printable ASCII
}
// Long pieces from small ASCII alphabets: where gpt2in cuts a piece between
// bytes that no token joins, and where its long-piece merging takes over.
const SMALL_ALPHABETS = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
  "0123456789", "0123456789abcdef", "etaoinshrdlu", "qxzjkvbw", "abcdefghijklmnopqrstuvwxyz   ", "acgt", "0001"];
function randomString() {
  const shape = int(100);
  let s = "";
  if (shape >= 95) {
    const al = pick(SMALL_ALPHABETS), n = 20 + int(rnd() < 0.3 ? 1000 : 100);
    for (let i = 0; i < n; i++) s += al[int(al.length)];
    return s;
  }
  if (shape < 5) {  // uniform over every code point both sides agree on
    const n = 1 + int(40);
    const kinds = ["L", "L", "N", "S", "M", "O", "O", "U"];
    for (let i = 0; i < n; i++) s += anyOf(pick(kinds));
    return s;
  }
  const n = 1 + int(shape < 90 ? 24 : 120);
  for (let i = 0; i < n; i++) {
    let a = atom();
    if (rnd() < 0.06) a = a.repeat(2 + int(rnd() < 0.2 ? 600 : 40));  // long runs
    s += a;
  }
  return s.split(oracle.EOT).join("<|endoftext|".slice(0, 5));
}
// Sometimes an invalid byte (lossy rule) inside; never 0xFF (the batch separator).
const BAD = [0x80, 0x9f, 0xbf, 0xc0, 0xc1, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf5, 0xf8, 0xfe];
function randomBytes() {
  const s = Buffer.from(randomString(), "utf8");
  if (rnd() >= 0.05) return s;
  const parts = [s];
  const k = 1 + int(3);
  for (let i = 0; i < k; i++) {
    const at = int(parts[parts.length - 1].length + 1), last = parts.pop();
    parts.push(last.subarray(0, at), Buffer.from([pick(BAD)]), last.subarray(at));
  }
  return Buffer.concat(parts);
}

// ---- reporting ------------------------------------------------------------------------
const escape = (buf) => {
  let out = "";
  for (const seg of oracle.segments(buf)) {
    if (!seg.valid) { out += "\\x" + seg.byte.toString(16).padStart(2, "0"); continue; }
    for (const ch of seg.text) {
      const c = ch.codePointAt(0);
      out += c >= 0x20 && c < 0x7f && ch !== "\\" ? ch : c < 0x10000 ? "\\u" + c.toString(16).padStart(4, "0") : "\\u{" + c.toString(16) + "}";
    }
  }
  return '"' + out + '"';
};
// GPT-2's pattern in JS (White_Space spelled out: JS \s differs), for reports only.
const PAT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\p{L}\p{N}]+|[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+(?![^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])|[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/gu;
function firstDifference(buf, want, got) {
  let i = 0;
  while (i < want.length && i < got.length && want[i] === got[i]) i++;
  let off = 0;
  for (let k = 0; k < i; k++) off += oracle.tokenBytes(want[k]).length;
  // the piece (by the JS rendering of the pattern) holding byte `off`
  let piece = "?";
  for (const seg of oracle.segments(buf)) {
    if (!seg.valid) { if (seg.offset === off) piece = escape(Buffer.from([seg.byte])) + " (invalid byte)"; continue; }
    let p = seg.offset;
    for (const m of seg.text.matchAll(PAT)) {
      const b = Buffer.byteLength(m[0]);
      const start = seg.offset + Buffer.byteLength(seg.text.slice(0, m.index));
      if (off >= start && off < start + b) piece = escape(Buffer.from(m[0])) + ` (bytes ${start}..${start + b})`;
      p = start + b;
    }
  }
  return `first difference at token ${i}, byte ${off}, in piece ${piece}`;
}
const mismatches = [];
function check(buf, want, got, how) {
  if (want.length === got.length && want.every((x, k) => x === got[k])) return true;
  let i = 0;
  while (i < want.length && i < got.length && want[i] === got[i]) i++;
  const win = (ids) => (i > 8 ? "... " : "") + ids.slice(Math.max(0, i - 8), i + 8).join(" ") + (ids.length > i + 8 ? " ..." : "");
  const e = escape(buf);
  mismatches.push(`${how}: ${e.length > 400 ? e.slice(0, 400) + '..."' : e} (${buf.length} bytes)\n` +
    `    expected ${want.length} ids [${win(want)}]\n    got      ${got.length} ids [${win(got)}]\n    ${firstDifference(buf, want, got)}`);
  return false;
}

// ---- run -----------------------------------------------------------------------------
const parseIds = (s) => s.split(/\s+/).filter(Boolean).map(Number);

async function main() {
  const t0 = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gpt2in-diff-"));
  const strings = [];
  for (let i = 0; i < N; i++) strings.push(randomBytes());
  const want = strings.map((b) => oracle.encode(b, { special: "error" }));
  const tOracle = Date.now() - t0;
  let failed = 0, checked = 0, processes = 0;

  // Batches joined by 0xFF, and one string per process through a file. All
  // inputs are written first and run by two shell loops (spawning thousands of
  // processes from this large Node process would cost more than gpt2in).
  const BATCH = 500;
  const jobs = [];
  for (let a = 0; a < N; a += BATCH) {
    const b = Math.min(N, a + BATCH), parts = [];
    for (let i = a; i < b; i++) { if (i > a) parts.push(Buffer.from([SEP])); parts.push(strings[i]); }
    jobs.push({ file: path.join(tmp, `b${a}.txt`), a, b });
    fs.writeFileSync(jobs[jobs.length - 1].file, Buffer.concat(parts));
  }
  for (let i = 0; i < N; i += 10) {
    jobs.push({ file: path.join(tmp, `s${i}.txt`), a: i, b: i + 1, alone: true });
    fs.writeFileSync(jobs[jobs.length - 1].file, strings[i]);
  }
  const loop = 'for f in "$@"; do "$GPT2IN" encode "$f" > "$f.out" 2> "$f.err"; echo $? > "$f.rc"; done';
  const half = Math.ceil(jobs.length / 2);
  await Promise.all([jobs.slice(0, half), jobs.slice(half)].map((js) => new Promise((resolve) =>
    execFile("sh", ["-c", loop, "sh", ...js.map((j) => j.file)], { env: { ...process.env, GPT2IN } }, resolve))));
  const tRun = Date.now() - t0 - tOracle;
  for (const j of jobs) {
    processes++;
    const rc = Number(fs.readFileSync(j.file + ".rc", "utf8"));
    const out = fs.readFileSync(j.file + ".out", "utf8"), err = fs.readFileSync(j.file + ".err", "utf8").trim();
    if (j.alone) {
      const i = j.a;
      checked++;
      if (rc !== 0) { mismatches.push(`string ${i} (alone): ${escape(strings[i])}: exit ${rc}: ${err}`); failed++; continue; }
      if (!check(strings[i], want[i], parseIds(out), `string ${i} (alone)`)) failed++;
      continue;
    }
    const { a, b } = j;
    if (rc !== 0) { mismatches.push(`batch ${a}..${b}: exit ${rc}: ${err}`); failed += b - a; continue; }
    const per = [[]];
    for (const t of parseIds(out)) if (t === SEP_ID) per.push([]); else per[per.length - 1].push(t);
    if (per.length !== b - a) { mismatches.push(`batch ${a}..${b}: ${per.length - 1} separator tokens, expected ${b - a - 1}`); failed += b - a; continue; }
    for (let i = a; i < b; i++) { checked++; if (!check(strings[i], want[i], per[i - a], `string ${i} (batch)`)) failed++; }
  }

  // One text of all the strings joined by <|endoftext|>, its prefixes and
  // suffixes, repeated past 2.3 MiB (SANITIZED: 1.1 MiB), so that the stream's
  // block edge and the threads' parts fall among special tokens: under
  // --special allow on 1, 2 and 3 threads, from a file and from stdin.
  const JOINS = [oracle.EOT, oracle.EOT, "<|", "endoftext|>", "<|endoftext", " " + oracle.EOT + "\n", oracle.EOT + oracle.EOT, "<" + oracle.EOT + ">"];
  const bigParts = [];
  let bigLen = 0, k = 0;
  const bigMin = (SANITIZED ? 1.1 : 2.3) * 1048576;
  while (bigLen < bigMin) {
    const j = Buffer.from(pick(JOINS)), str = strings[k++ % strings.length];
    bigParts.push(j, str);
    bigLen += j.length + str.length;
  }
  const big = Buffer.concat(bigParts), bigFile = path.join(tmp, "big.txt");
  fs.writeFileSync(bigFile, big);
  const bigWant = oracle.encode(big, { special: "allow" });
  for (const [threads, how] of [[1, "file"], [2, "file"], [3, "file"], [2, "stdin"]]) {
    const cmd = how === "file" ? `"$GPT2IN" encode --special allow --threads ${threads} "$1"`
      : `"$GPT2IN" encode --special allow --threads ${threads} < "$1"`;
    const got = await new Promise((resolve) => execFile("sh", ["-c", cmd, "sh", bigFile],
      { env: { ...process.env, GPT2IN }, maxBuffer: 1 << 30 }, (e, out, err) => resolve(e ? { err: String(err || e) } : { out })));
    checked++;
    if (got.err) { mismatches.push(`joined text, ${threads} threads, ${how}: ${got.err.trim()}`); failed++; continue; }
    if (!check(big, bigWant, parseIds(got.out), `joined text (${big.length} bytes), --special allow, ${threads} threads, ${how}`)) failed++;
  }
  fs.rmSync(tmp, { recursive: true, force: true });

  let bytes = 0;
  for (const s of strings) bytes += s.length;
  console.log(`differential: seed ${SEED} (GPT2IN_DIFF_SEED=${SEED} to repeat), ${N} strings, ${bytes} bytes, ` +
    `${checked} comparisons in ${processes} processes, ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
    `(drawing strings and running tiktoken ${(tOracle / 1000).toFixed(1)} s, gpt2in ${(tRun / 1000).toFixed(1)} s)`);
  console.log(`oracle: npm tiktoken ${oracle.VERSION}, its regex knows Unicode ${tkVersion}; gpt2in's utf8proc is Unicode ${ucVersion}`);
  for (const [k, v] of Object.entries(excluded))
    console.log(`  left out ${v.length} code points (${k}), e.g. ${v.slice(0, 4).map((c) => "U+" + c.toString(16).toUpperCase()).join(" ")}`);
  for (const m of mismatches.slice(0, 20)) console.log("MISMATCH " + m);
  if (mismatches.length > 20) console.log(`... ${mismatches.length - 20} more`);
  console.log(`${checked - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
main();
