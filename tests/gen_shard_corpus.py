#!/usr/bin/python3
"""gen_shard_corpus.py DIR [SCALE] - a small, seeded corpus for gpt2in shard's
tests, from Debian's license texts (/usr/share/common-licenses) and random
strings (several scripts, emoji, digits, apostrophes, <|endoftext|> and its
pieces inside documents, an empty document, JSON escapes):

  docs.jsonl   JSON Lines, field "text" (half the lines ASCII-escaped), plus
               other fields, blank lines
  lines.txt    one document a line
  whole1.txt, whole2.txt   one document each (a license text, random text)
  many/NNN.txt SCALE * 20 small one-document files (for the resume test)

Everything is valid UTF-8 and the same on every run (seed 18).
"""
import glob
import json
import os
import random
import sys

out = sys.argv[1]
scale = int(sys.argv[2]) if len(sys.argv) > 2 else 1
rng = random.Random(18)
os.makedirs(os.path.join(out, "many"), exist_ok=True)

licenses = []
for p in sorted(glob.glob("/usr/share/common-licenses/*")):
    if os.path.isfile(p):
        try:
            licenses.append(open(p, encoding="utf-8").read())
        except UnicodeDecodeError:
            pass
if not licenses:
    licenses = ["Permission is hereby granted, free of charge, to any person obtaining a copy.\n" * 50]
paras = [p for t in licenses for p in t.split("\n\n") if p.strip()]

ALPHABET = (
    [chr(c) for c in range(0x20, 0x7f)] * 4
    + list("éèüñçßøåÆŒ") + list("αβγδλΩ") + list("приветмир") + list("日本語中文字")
    + list("ひらがなカタカナ") + ["😀", "🎉", "👍🏽"] + list("0123456789") * 2
    + ["'s", "'t", "'ll", " ", "  ", "\t", "\u00a0", "<|endoftext|>", "<|endof", "text|>", "\r"]
)


def rand_text(n):
    return "".join(rng.choice(ALPHABET) for _ in range(n))


docs = []
for i in range(60 * scale):
    r = rng.random()
    if r < 0.5:
        d = rng.choice(paras)
    elif r < 0.9:
        d = rand_text(rng.randint(1, 400))
    else:
        d = rand_text(rng.randint(1, 50)) + "\n" + rng.choice(paras) + "\u0000x"
    docs.append(d)
docs.insert(7, "")
docs.insert(11, "<|endoftext|>")
# Documents ending in whitespace (the next one must not change their end).
docs[20:20] = ["trailing spaces   ", "trailing newlines\n\n", " ", "\n", "tab\t", "x"]

with open(os.path.join(out, "docs.jsonl"), "w", encoding="utf-8") as f:
    for i, d in enumerate(docs):
        rec = {"id": i, "text": d, "meta": {"n": [1, 2.5, None, True]}}
        f.write(json.dumps(rec, ensure_ascii=(i % 2 == 0)) + "\n")
        if i % 17 == 3:
            f.write("   \n")
    # Unpaired surrogates, written as escapes (json.loads takes them; tiktoken
    # encodes each as U+FFFD), a pair, and a backslash before "ud800".
    for d in ["a\ud800b", "\udc00\ud800 x \ud83d\ude00", "end \udbff", "lit \\ud800 y"]:
        f.write(json.dumps({"text": d}) + "\n")

with open(os.path.join(out, "lines.txt"), "w", encoding="utf-8") as f:
    for i in range(80 * scale):
        f.write(rand_text(rng.randint(0, 200)).replace("\n", " ") + rng.choice(["", " ", "  ", "\t"]) + "\n")
    f.write("last line without a newline")

with open(os.path.join(out, "whole1.txt"), "w", encoding="utf-8") as f:
    f.write(licenses[0])
with open(os.path.join(out, "whole2.txt"), "w", encoding="utf-8") as f:
    f.write(rand_text(3000) + "\n\n" + rng.choice(paras))

for i in range(20 * scale):
    with open(os.path.join(out, "many", "%03d.txt" % i), "w", encoding="utf-8") as f:
        f.write("\n".join(rng.choice(paras) for _ in range(rng.randint(5, 30))))
