"""gen_vocab_fuzz_seeds.py - seed corpus of the fuzz_vocab_files target
(tests/fuzz/corpus/vocab_files/, committed; rerun only to change it).

A small vocabulary - GPT-2's 256 byte tokens, its first 40 merges and
<|endoftext|> - in every format, written by tests/gen_vocab_fixtures.py's
independent writers, with GPT-2's ids and permuted; plus a few broken ones.
Each file starts with the target's selector byte (0 tokenizer.json,
1 vocab.json 0xFF merges.txt, 2 tiktoken, 3 GGUF, 4 llm.c, 5 detect).

usage: /usr/bin/python3 tests/gen_vocab_fuzz_seeds.py
"""
import base64
import json
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_vocab_fixtures as g  # noqa: E402

OUT = os.path.join(g.ROOT, "tests", "fuzz", "corpus", "vocab_files")


def main():
    with open(os.path.join(g.ROOT, "gpt2_weights", "encoder.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    with open(os.path.join(g.ROOT, "gpt2_weights", "vocab.bpe"), encoding="utf-8") as f:
        merges = [ln for ln in f.read().split("\n")[1:] if ln][:40]
    by_id = sorted((i, t) for t, i in encoder.items() if i < 256)
    tokens = [t for _, t in by_id] + [m.replace(" ", "") for m in merges] + [g.EOT]
    n = len(tokens)
    vocab = {t: i for i, t in enumerate(tokens)}
    rng = random.Random(7)
    perm = list(range(n))
    rng.shuffle(perm)
    pvocab = {t: perm[i] for i, t in enumerate(tokens)}
    ptokens = [None] * n
    for i, t in enumerate(tokens):
        ptokens[perm[i]] = t

    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)

    def put(name, sel, data):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([sel]) + data)

    tj = json.dumps(g.hf_tokenizer(vocab, merges, eot_id=n - 1), ensure_ascii=False).encode()
    put("tokenizer-json", 0, tj)
    put("tokenizer-json-perm", 0, json.dumps(g.hf_tokenizer(pvocab, merges, as_pairs=True, eot_id=perm[n - 1]),
                                             ensure_ascii=False).encode())
    put("tokenizer-json-seq", 5, json.dumps(g.hf_tokenizer(vocab, merges, sequence=True, eot_id=n - 1)).encode())
    put("tokenizer-json-two-made", 0, json.dumps(g.hf_tokenizer(vocab, merges + merges[:1], eot_id=n - 1)).encode())
    pair = json.dumps(pvocab).encode() + b"\xff" + ("#version: 0.2\n" + "\n".join(merges) + "\n").encode()
    put("pair-perm", 1, pair)
    put("pair-detect", 5, pair)
    tk = "".join("%s %d\n" % (base64.b64encode(g.raw(t)).decode(), i) for i, t in enumerate(tokens[:-1])).encode()
    put("tiktoken", 2, tk)
    put("tiktoken-detect", 5, tk)
    put("tiktoken-bad-b64", 2, tk.replace(b"IQ==", b"IQ=A", 1))
    types = [3 if t == g.EOT else 1 for t in tokens]
    put("gguf", 3, g.gguf_file(tokens, types, merges, n - 1))
    put("gguf-perm-v2", 5, g.gguf_file(ptokens, [3 if t == g.EOT else 1 for t in ptokens], merges, perm[n - 1],
                                      version=2, pre="gpt-2"))
    put("gguf-cut", 3, g.gguf_file(tokens, types, merges, n - 1)[:1500])
    raws = [g.raw(t) for t in tokens]
    put("llmc-v2", 4, g.llmc_file(raws, 2, n - 1))
    put("llmc-perm-v2", 5, g.llmc_file([g.raw(t) for t in ptokens], 2, perm[n - 1]))
    put("llmc-v1-wrong-size", 4, g.llmc_file(raws, 1, n - 1))

    # several special tokens: the added tokens past the vocabulary, one
    # sharing a prefix with another, one extending another; in GGUF control
    # and user-defined tokens
    added = ["<s>", "<sep>", "<s>x", "</s>"]
    t = g.hf_tokenizer(vocab, merges, eot_id=n - 1)
    t["added_tokens"] += [{"id": n + k, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                           "normalized": True, "special": k != 3} for k, c in enumerate(added)]
    put("tokenizer-json-specials", 0, json.dumps(t, ensure_ascii=False).encode())
    gt = tokens + added
    put("gguf-specials", 3, g.gguf_file(gt, types + [3, 3, 3, 4], merges, n - 1))


if __name__ == "__main__":
    main()
