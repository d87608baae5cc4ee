"""specials_text.py - texts for tests/test_special_vocab.sh: the committed
fixture texts (valid UTF-8) with the special tokens of
tests/gen_vocab_fixtures.py's "multi" vocabulary spliced in at seeded
random places, with their prefixes (which are text), runs of them, and
pairs that overlap ("<s>" then "<sep>", "<sep>x", "<<s>>").

Writes into OUT_DIR:
  small.txt        about 150 KB
  big.txt          (small.txt <|endoftext|>) repeated to BIG bytes at least
  err_NN.txt       texts whose leftmost special token is known
  errors.txt       "BYTE<TAB>TOKEN<TAB>err_NN.txt" for each, the leftmost
                   longest special token as Hugging Face finds it

usage: /usr/bin/python3 tests/oracle/specials_text.py OUT_DIR BIG
"""
import glob
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<sep>", "<|endoftext|>", "<mask>", " hello world", "d<s"]
LATE = ["<|endoftext|>", "<mask>", " hello world", "d<s"]  # matched in Hugging Face's second pass
PIECES = SPECIALS + ["<se", "<s", "<", "</", "<|endoftext", "<ma", " hello worl", " hello", "<<s>>", "<s><sep>",
                     "<sep>x", "<s>>", "<sep<s>", " hello world hello world", "<mask><mask>", "\n<s>\n", " <s> ",
                     "d<s>", "d<s", "d<sep>", " hello world<s>", "d<mask>", "d<sx"]


def leftmost_longest(b, tokens):
    """(offset, token) of the leftmost of tokens in b, the longest there."""
    best = None
    for t in tokens:
        i = b.find(t.encode())
        if i >= 0 and (best is None or i < best[0] or (i == best[0] and len(t) > len(best[1]))):
            best = (i, t)
    return best


def first_special(b):
    """The first special token as Hugging Face splits them: the first
    pass's leftmost-longest, unless the second pass finds one before it."""
    first = leftmost_longest(b, [t for t in SPECIALS if t not in LATE])
    late = leftmost_longest(b[:first[0]] if first else b, LATE)
    return late or first


def main():
    out, big = sys.argv[1], int(sys.argv[2])
    rng = random.Random(2026)
    texts = []
    for t in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "tokenizer", "*.txt"))):
        b = open(t, "rb").read()
        try:
            texts.append(b.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    base = "".join(texts)

    def spliced(n):
        parts, size = [], 0
        while size < n:
            a = rng.randrange(len(base))
            chunk = base[a:a + rng.randrange(1, 400)]
            piece = rng.choice(PIECES)
            parts += [chunk, piece]
            size += len(chunk.encode()) + len(piece.encode())
        return "".join(parts)

    small = spliced(150000)
    open(os.path.join(out, "small.txt"), "wb").write(small.encode())
    # the threads' text: the small one again and again, each time ended by
    # <|endoftext|> (text before a special token ends as at end of input,
    # so its ids are the small text's, and the token's, again and again)
    one = small.encode() + b"<|endoftext|>"
    open(os.path.join(out, "big.txt"), "wb").write(one * (big // len(one) + 1))

    lines = []
    for k in range(13):
        b = spliced(rng.choice([50, 3000, 600000])).encode()
        if k == 0:
            b = b"abc <sep <se <s<sep>x<s>"          # "<sep>" before "<s>": the leftmost
        if k == 2:
            b = b"hello world d<s> <sep>"            # "d<s" loses to "<s>" (the first pass)
        if k == 1:
            b = b"x" * 70000 + b"<|endoftext" + b"<mask>"
        if first_special(b) is None:
            b += b"<pad>"
        name = "err_%02d.txt" % k
        open(os.path.join(out, name), "wb").write(b)
        at, tok = first_special(b)
        lines.append("%d\t%s\t%s\n" % (at, tok, name))
    open(os.path.join(out, "errors.txt"), "w").write("".join(lines))


if __name__ == "__main__":
    main()
