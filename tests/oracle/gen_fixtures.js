// gen_fixtures.js - writes the synthetic fixtures of tests/fixtures/tokenizer/
// (the hand-written ones are committed as they are) and, for every NAME.txt
// there, NAME.ids: the token ids tiktoken gives, one decimal per line.
//   node tests/oracle/gen_fixtures.js      (after sh tests/oracle/install.sh)
// Files named special_allow_*.txt are encoded with <|endoftext|> allowed,
// special_text_*.txt with it as plain text; the rest as tiktoken's default.
// Invalid UTF-8 follows gpt2in's rule (oracle.js), tiktoken has none.
"use strict";
const fs = require("fs");
const path = require("path");
const oracle = require("./oracle.js");

const dir = path.join(__dirname, "..", "fixtures", "tokenizer");

// Deterministic PRNG (mulberry32) so that regenerating gives the same files.
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const synthetic = {};
const put = (name, content) => { synthetic[name] = content; };

// ---- tokenizer.md's worked cases and tiktoken's public vectors -------------
const worked = [
  "Hello   world", "foo   ", "a\n\nb", "  \n  x", "DON'T don't", "it's 'sup", "x\u2019s",
  "can't've", "123456", "l33t c0de", "\u00b3\u00b2\u00b9 \u00bd", "na\u0301ive", "a\u00a0b", "a\x1cb",
  "hello world", "0", "00", "000", "0000", "00000", "000000", "0000000", "00000000", "000000000",
  "0000000000000000", "00000000000000000",
];
worked.forEach((s, i) => put(`vec_${String(i).padStart(2, "0")}`, s));
put("special_text_eot", "<|endoftext|>");
put("special_allow_hello", "hello <|endoftext|>");
// Round trips of c * 10000 (tiktoken's test_catastrophically_repetitive).
for (const [name, c] of [["caret", "^"], ["zero", "0"], ["a", "a"], ["apos_s", "'s"], ["space", " "], ["newline", "\n"]])
  put(`repeat_${name}`, c.repeat(10000));

// ---- whitespace oddities ---------------------------------------------------
{
  const odd = ["\u00a0", "\u3000", "\u2028", "\u2029", "\u0085", "\u001c", "\u001d", "\u001e", "\u001f",
    "\u180e", "\u200b", "\ufeff", "\u1680", "\u2000", "\u2007", "\u200a", "\u202f", "\u205f", "\t", "\v", "\f", "\r"];
  let s = "";
  for (const w of odd) {
    const cp = "U+" + w.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    s += `${cp}:a${w}b ${w}c${w}${w}d ${w}1 ${w}! x ${w} y${w}\n${w} z  ${w}${w}  w${w}\n`;
  }
  s += "spaces:" + " ".repeat(37) + "end" + " ".repeat(5) + "\n\n\n\n\n\t\t\t\tx\t \t \n \n \n  \r\n\r\n\r\n";
  s += "mixed\u3000\u3000\u3000text  \u00a0 \u00a0\u00a0word\u2028\u2028\u2028next\u0085\u0085 \u0085last";
  s += "\n" + " ".repeat(200) + "\n" + "\t".repeat(100) + "a" + "\n".repeat(64) + "b" + " \n".repeat(30) + "   ";
  put("whitespace", s);
}
put("crlf", fs.readFileSync(path.join(dir, "english_prose.txt"), "utf8").replace(/\n/g, "\r\n"));

// ---- contractions in every case --------------------------------------------
{
  const ends = ["s", "t", "re", "ve", "m", "ll", "d"];
  let s = "";
  for (const e of ends) {
    const up = e.toUpperCase(), mixed = e[0].toUpperCase() + e.slice(1);
    for (const q of ["'", "\u2019", "\u2018", "`"])
      s += `it${q}${e} IT${q}${up} It${q}${mixed} ${q}${e} ${q}${up}x 1${q}${e} !${q}${e} ${q}${q}${e}${e} word${q}${e}${q}${e}\n`;
  }
  s += "I'm you're we've they'll she'd he's it's can't won't shan't y'all'd've o'clock rock'n'roll '''s' 's 't";
  s += "\nI'M YOU'RE WE'VE THEY'LL SHE'D HE'S IT'S CAN'T; i'M yOu'Re 'S'T'RE'VE'M'LL'D'";
  put("contractions", s);
}

// ---- digits of all kinds ---------------------------------------------------
{
  const r = prng(7);
  let long = "";
  for (let i = 0; i < 3000; i++) long += Math.floor(r() * 10);
  let s = "1 12 123 1234 12345 123456 1234567 12345678 123456789 3.14159265358979 -42 +7 1e10 0x1F 1,000,000 10.000,50\n";
  s += "l33t h4x0r 1337 c0d3 2day 4u b4 m8 gr8 w00t\n";
  s += "superscripts \u00b3\u00b2\u00b9 x\u00b2+y\u00b2 H\u2082O \u00bd \u00bc \u00be \u2153 \u215e 1\u00bd\n";
  s += "Roman \u2160\u2161\u2162 \u216b \u2170\u2171 Nl: \u3007 \u3021\u3022; circled \u2460\u2461\u2473 \u24ea; Arabic \u0660\u0661\u0662; Devanagari \u0966\u0967; fullwidth \uff10\uff11\uff12; math \ud835\udfce\ud835\udfcf; Thai \u0e51\u0e52\n";
  s += "digits glued: abc123def 123abc abc-123 ...123... ##42## $1,299.99 \u20ac5 50% 3/4 2024-05-20T12:34:56Z 192.168.0.1\n";
  s += long + "\n" + "9".repeat(1000) + " " + "0".repeat(257);
  put("digits", s);
}

// ---- decomposed accents and combining marks ----------------------------------
{
  const nfc = "naïve café résumé façade Ångström Zoë crème brûlée piñata São Paulo Dvořák Œuvre ÉCOLE élève";
  let s = nfc.normalize("NFD") + "\n" + nfc + "\n";
  s += "stacked: a\u0301\u0302\u0303\u0304 e\u0308\u0308\u0308 Z\u0351\u0352\u0353\u0354\u0355\u0356\u0357\u0358 x\u20dd \u0301start \u0301\u0301 end\u0301";
  s += "\nmarks after space: a \u0301b, digit 1\u0301 2, punct !\u0301?, hangul \u1100\u1161\u11a8 \u1112\u1161\u11ab";
  put("decomposed", s);
}

// ---- long pieces -------------------------------------------------------------
{
  const r = prng(42);
  const bytes = Buffer.alloc(7680);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
  put("long_a", "a".repeat(10240));
  put("long_eq", "=".repeat(10240));
  put("long_spaces", " ".repeat(10240) + "x" + " ".repeat(5000));
  put("long_tabs_newlines", "\t".repeat(4000) + "\n".repeat(4000) + "\r\n".repeat(1000) + "y");
  put("long_base64", bytes.toString("base64"));
  let letters = "";
  for (let i = 0; i < 10240; i++) letters += String.fromCharCode(97 + Math.floor(r() * 26));
  put("long_random_letters", letters);
  put("long_dashes_mixed", "-".repeat(3000) + "*".repeat(3000) + "-=".repeat(2000) + "\u00e9".repeat(2000));
  put("long_cjk", "\u6f22".repeat(3000) + "\ud83d\ude00".repeat(1000));
}

// ---- invalid UTF-8 (gpt2in's rule) --------------------------------------------
{
  const b = (...xs) => Buffer.from(xs);
  const s = (x) => Buffer.from(x, "utf8");
  put("invalid_utf8", Buffer.concat([
    s("valid start "), b(0xff), s("after ff "), b(0xc3), s(" lone lead "), b(0xe2, 0x82), s("truncated euro "),
    b(0xed, 0xa0, 0x80), s(" surrogate "), b(0xc0, 0xaf), s(" overlong "), b(0xf4, 0x90, 0x80, 0x80), s(" above max "),
    b(0x80, 0x80, 0xbf), s(" stray continuations "), s("word"), b(0xfe), s("word  "), b(0xff), s("  x's"), b(0xc3),
    s("'s 123"), b(0x80), s("456 caf\u00e9 "), b(0xe9), s(" latin1 caf"), b(0xe9), s("\n"), b(0xf0, 0x9f, 0x98), s("\u{1F600}"),
    b(0xf8, 0x88, 0x80, 0x80, 0x80), s(" end"), b(0xe2),
  ]));
}

// ---- <|endoftext|> allowed ------------------------------------------------------
put("special_allow_doc", "First document.\n<|endoftext|>Second document, no space before.<|endoftext|> Third, with a space."
  + "<|endoftext|><|endoftext|>   spaces   <|endoftext|>\n\n<|endoftext|>'s<|endoftext|>123<|endoftext|>");

// ---- write -------------------------------------------------------------------------
for (const [name, content] of Object.entries(synthetic))
  fs.writeFileSync(path.join(dir, name + ".txt"), content);
let total = 0, files = 0;
for (const f of fs.readdirSync(dir).sort()) {
  if (!f.endsWith(".txt")) continue;
  const name = f.slice(0, -4);
  const buf = fs.readFileSync(path.join(dir, f));
  const special = name.startsWith("special_allow_") ? "allow" : name.startsWith("special_text_") ? "text" : "error";
  const ids = oracle.encode(buf, { special });
  fs.writeFileSync(path.join(dir, name + ".ids"), ids.join("\n") + "\n");
  total += ids.length; files++;
}
console.log(`gen_fixtures: ${files} fixtures, ${total} tokens, tiktoken ${oracle.VERSION}`);
