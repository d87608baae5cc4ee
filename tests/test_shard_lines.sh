#!/bin/sh
# gpt2in shard --split-lines encodes runs of lines in one library call and
# cuts the tokens at the \n between them where that \n is a piece of its
# own: every line must still get exactly the tokens it gets alone. Lines
# built from atoms that meet at line ends and starts in every way (spaces,
# tabs, \r, Unicode spaces, contractions, digits, punctuation, empty and
# blank lines, indentation) are checked against the same lines as JSON
# Lines documents (another path: documents joined by 0xFF), with 1 and 2
# threads, and with --unit-bytes cutting the file into batches elsewhere.
. tests/shard_setup.sh
[ -x /usr/bin/python3 ] || { echo "skipped: no /usr/bin/python3"; exit 77; }
/usr/bin/python3 - "$d" <<'PY'
import json, random, sys
d = sys.argv[1]
random.seed(18)
atoms = ["a", "Hello", "world", "'s", "'t", "'re", "'ll", "'d", "'m", "'ve", "123", "4", "!", "?", ".", "...",
         " ", "  ", "   ", "\t", "\t\t", " \t", "\r", "\u00a0", "\u3000", "\u2003", "\u0085", "\x0b", "\x0c",
         "\x1c", "\x1f", "\u00e9", "\u65e5\u672c", "\U0001f600", "-", "(", "'", '"', " y", " 1", " .", "\u200b",
         "<|endoftext|>", "    ", "\t ", "\r\r", "\x0b ", " \u00a0", "\u00a0 ", "        "]
lines = []
for i in range(40000):
    lines.append("".join(random.choice(atoms) for _ in range(random.randint(0, 6))))
# and prose and code, the common case: long runs of joined lines, indented
words = "the of and a to in is was he for it with as his on be at by I had not".split()
for i in range(6000):
    lines.append(random.choice(["", "", " ", "  ", "    ", "\t", "\t\t"]) +
                 " ".join(random.choice(words) for _ in range(random.randint(1, 12))) + random.choice(["", ".", " ", ":"]))
random.shuffle(lines)
with open(d + "/lines.txt", "w", encoding="utf-8", newline="") as f:
    f.write("\n".join(lines))
with open(d + "/lines.jsonl", "w", encoding="utf-8") as f:
    for l in lines:
        if l:   # an empty line is no document
            f.write(json.dumps({"text": l}) + "\n")
PY
"$GPT2IN" shard --quiet --threads 1 --out "$d/j" "$d/lines.jsonl" || bad "JSON Lines: exit $?"
for T in 1 2; do
    "$GPT2IN" shard --quiet --threads $T --split-lines --out "$d/t$T" "$d/lines.txt" || bad "--split-lines, $T threads: exit $?"
    cmp -s "$d/j/corpus_val_000000.bin" "$d/t$T/corpus_val_000000.bin" ||
        bad "--split-lines, $T threads: the tokens differ from the same lines as JSON Lines documents"
done
# the same lines in a unit of several inputs, cut at other places
split -l 7001 "$d/lines.txt" "$d/part."
"$GPT2IN" shard --quiet --split-lines --out "$d/p" "$d"/part.* || bad "parts: exit $?"
/usr/bin/python3 -c 'import sys
a = open(sys.argv[1], "rb").read()[1024:]; b = open(sys.argv[2], "rb").read()[1024:]
sys.exit(a != b)' "$d/j/corpus_val_000000.bin" "$d/p/corpus_val_000000.bin" || bad "the file in parts: other tokens"
finish
