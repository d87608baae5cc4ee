"""Helpers for tests/test_tokenizer_stream.sh.

  chunks N FILE       copy FILE to stdout in writes of N bytes, pausing after
                      each small write so the reader sees the chunks apart
  blocks DIR          write DIR/block_K.txt: variations of the fixture texts,
                      each starting with a non-space and ending in one newline
                      after a non-space, so that the tokens of a concatenation
                      are the concatenation of the blocks' tokens
  text DIR MB         a seeded sequence of blocks, about MB megabytes
  ids DIR MB          the same sequence of the blocks' DIR/block_K.u32 files
  corpus KIND MB      benchmark text (tests/bench/bench_bpe.sh): KIND english,
                      code or multilingual; seeded variations of the fixtures
  patho KIND MB       a, letters, digits, spaces or equals: one long piece
"""
import os
import random
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
SOURCES = ["english_prose", "code_c", "code_python", "code_js", "data_json", "minified_js", "emoji",
           "contractions", "digits", "decomposed", "lang_mixed", "lang_cyrillic", "lang_greek", "lang_arabic",
           "lang_hebrew", "lang_devanagari", "lang_thai", "lang_chinese", "lang_japanese", "lang_korean"]


def chunks(n, path):
    out = sys.stdout.buffer.raw if hasattr(sys.stdout.buffer, "raw") else sys.stdout.buffer
    with open(path, "rb") as f:
        data = f.read()
    # A pause after each small write lets the reader take it alone; on
    # larger files only yield (the pauses would add up).
    pause = n < 4096 and len(data) <= 2048
    try:
        for i in range(0, len(data), n):
            out.write(data[i:i + n])
            if pause:
                time.sleep(0.0001)
            elif n < 4096:
                os.sched_yield()
    except BrokenPipeError:  # the reader stopped (an error it reports itself)
        sys.stderr.close()
        sys.exit(1)


def variation(text, rnd):
    paras = text.split("\n\n")
    rnd.shuffle(paras)
    text = "\n\n".join(paras)
    text = re.sub(r"\d+", lambda m: str(rnd.randrange(10 ** len(m.group(0)))), text)
    words = text.split(" ")
    for i in range(len(words)):
        r = rnd.random()
        if r < 0.02:
            words[i] = words[i].upper()
        elif r < 0.04:
            words[i] = words[i].capitalize()
    return " ".join(words)


def blocks(d):
    rnd = random.Random(2024)
    k = 0
    for name in SOURCES:
        with open(os.path.join(FIX, name + ".txt"), encoding="utf-8") as f:
            base = f.read()
        for _ in range(12 if name == "english_prose" else 2):
            t = variation(base, rnd).strip() + "\n"
            with open(os.path.join(d, "block_%d.txt" % k), "w", encoding="utf-8", newline="") as f:
                f.write(t)
            k += 1


def sequence(d, mb, ext):
    names = sorted(f for f in os.listdir(d) if f.startswith("block_") and f.endswith(".txt"))
    data = []
    for n in names:
        with open(os.path.join(d, n[:-4] + ext), "rb") as f:
            data.append(f.read())
    sizes = [os.path.getsize(os.path.join(d, n)) for n in names]
    rnd = random.Random(7)
    out = sys.stdout.buffer
    total, goal = 0, mb * 1000 * 1000
    while total < goal:
        k = rnd.randrange(len(names)) if rnd.random() < 0.5 else rnd.randrange(12)  # prose-heavy
        out.write(data[k])
        total += sizes[k]


CORPORA = {
    "english": ["english_prose"],
    "code": ["code_c", "code_python", "code_js", "data_json", "minified_js"],
    "multilingual": ["lang_mixed", "lang_cyrillic", "lang_greek", "lang_arabic", "lang_hebrew", "lang_devanagari",
                     "lang_thai", "lang_chinese", "lang_japanese", "lang_korean", "emoji"],
}


def corpus(kind, mb):
    rnd = random.Random(99)
    texts = []
    for name in CORPORA[kind]:
        with open(os.path.join(FIX, name + ".txt"), encoding="utf-8") as f:
            texts.append(f.read())
    out, total, goal = [], 0, mb * 1000 * 1000
    while total < goal:
        t = (variation(rnd.choice(texts), rnd).strip() + "\n\n").encode()
        out.append(t)
        total += len(t)
    sys.stdout.buffer.write(b"".join(out))


def patho(kind, mb):
    n = int(mb * 1000 * 1000)
    rnd = random.Random(5)
    if kind == "letters":
        data = bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(n))
    elif kind == "digits":
        data = bytes(rnd.choice(b"0123456789") for _ in range(n))
    else:
        data = {"a": b"a", "spaces": b" ", "equals": b"="}[kind] * n
    sys.stdout.buffer.write(data)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "chunks":
        chunks(int(sys.argv[2]), sys.argv[3])
    elif cmd == "blocks":
        blocks(sys.argv[2])
    elif cmd in ("text", "ids"):
        sequence(sys.argv[2], float(sys.argv[3]), ".txt" if cmd == "text" else ".u32")
    elif cmd == "corpus":
        corpus(sys.argv[2], float(sys.argv[3]))
    elif cmd == "patho":
        patho(sys.argv[2], float(sys.argv[3]))
    else:
        sys.exit("unknown command " + cmd)
