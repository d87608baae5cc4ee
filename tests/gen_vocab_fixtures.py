"""gen_vocab_fixtures.py - GPT-2's vocabulary in the files other stacks keep,
written from gpt2_weights/encoder.json + vocab.bpe by this short independent
script (nothing of gpt2in's code): Hugging Face tokenizer.json (merges as
strings; a permuted one with merges as pairs; one with the Sequence
pre-tokenizer), vocab.json + merges.txt, tiktoken rank files, GGUF (version
3, after GGUF's spec: docs/gguf.md of ggerganov/ggml) and llm.c's
gpt2_tokenizer.bin (versions 1 and 2).

"perm" files number GPT-2's tokens differently (a seeded permutation), as
RoBERTa-style vocabularies do; perm_*.txt hold the map, one new id per GPT-2
id, so that expected ids are GPT-2's (npm tiktoken's) mapped through it.
tiktoken and llm.c files rank tokens by id, so their permutation keeps the
merged tokens' order and moves only the single bytes (tiktoken) or only
decodes (llm.c).

"multi" files (--multi writes only them) are a RoBERTa-style vocabulary
with several special tokens: GPT-2's bytes and first 2000 merges, ids
permuted after "<s>" 0, "<pad>" 1, "</s>" 2, "<unk>" 3 (in the vocabulary,
as RoBERTa's), then added tokens past the vocabulary: "<sep>" (sharing "<s"
with "<s>"), "<|endoftext|>", "<mask>", a non-special " hello world" and
"d<s"; the last four "normalized" (matched by Hugging Face in a second
pass, between the others: "d<s>" is "d", "<s>").
multi.tokenizer.json has them all; multi_one.tokenizer.json too, all
matched in one pass; multi_text.tokenizer.json none (the reference for
--special text); multi.gguf the same ids, the special tokens control
tokens and " hello world" user-defined (GGUF has one pass).

usage: python3 tests/gen_vocab_fixtures.py OUT_DIR [--multi]
"""
import base64
import json
import os
import random
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"


def bytes_to_unicode():
    """OpenAI's byte -> character table (gpt-2/src/encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_DECODER = {c: b for b, c in bytes_to_unicode().items()}


def raw(tok):
    if tok == EOT:
        return tok.encode()
    return bytes(BYTE_DECODER[c] for c in tok)


def hf_tokenizer(vocab, merges, as_pairs=False, sequence=False, eot_id=50256):
    if sequence:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    else:
        pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": eot_id, "content": EOT, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": True, "special": True}],
        "normalizer": None, "pre_tokenizer": pre,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [m.split(" ") for m in merges] if as_pairs else merges},
    }


def gguf_string(b):
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, vtype, payload):
    return gguf_string(key.encode()) + struct.pack("<I", vtype) + payload


def gguf_file(tokens, types, merges, eos, version=3, pre=None):
    """tokens: strings by id; one F32 tensor after the keys, as a model file has."""
    kvs = [
        gguf_kv("general.architecture", 8, gguf_string(b"gpt2")),
        gguf_kv("general.alignment", 4, struct.pack("<I", 32)),
        gguf_kv("tokenizer.ggml.model", 8, gguf_string(b"gpt2")),
        gguf_kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(tokens)) +
                b"".join(gguf_string(t.encode()) for t in tokens)),
        gguf_kv("tokenizer.ggml.token_type", 9, struct.pack("<IQ", 5, len(types)) +
                struct.pack("<%di" % len(types), *types)),
        gguf_kv("tokenizer.ggml.merges", 9, struct.pack("<IQ", 8, len(merges)) +
                b"".join(gguf_string(m.encode()) for m in merges)),
        gguf_kv("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", eos)),
        gguf_kv("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", eos)),
    ]
    if pre is not None:
        kvs.append(gguf_kv("tokenizer.ggml.pre", 8, gguf_string(pre.encode())))
    # tensor info: name, n_dims, dims (fastest first), type F32, offset
    info = gguf_string(b"token_embd.weight") + struct.pack("<I", 2) + struct.pack("<QQ", 4, 2) + \
        struct.pack("<IQ", 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", version, 1, len(kvs)) + b"".join(kvs) + info
    head += b"\0" * (-len(head) % 32)
    return head + struct.pack("<8f", *range(8))


def llmc_file(raw_tokens, version, eot):
    header = [20240328, version, len(raw_tokens)] + ([eot] if version == 2 else [])
    header += [0] * (256 - len(header))
    body = b"".join(bytes([len(t)]) + t for t in raw_tokens)
    return struct.pack("<256I", *header) + body


MULTI_IN_VOCAB = ["<s>", "<pad>", "</s>", "<unk>"]
MULTI_ADDED = ["<sep>", EOT, "<mask>", " hello world", "d<s"]
# "normalized": true (Hugging Face's second pass), the others false
MULTI_LATE = [EOT, "<mask>", " hello world", "d<s"]


def multi(out, encoder, merges):
    """The RoBERTa-style vocabulary with several special tokens (see above)."""
    by_id = sorted(encoder, key=encoder.get)
    merges = merges[:2000]
    ordinary = by_id[:256] + [m.replace(" ", "") for m in merges]
    rng = random.Random(17)
    ids = list(range(len(MULTI_IN_VOCAB), len(MULTI_IN_VOCAB) + len(ordinary)))
    rng.shuffle(ids)
    vocab = {t: i for i, t in enumerate(MULTI_IN_VOCAB)}
    vocab.update({t: ids[k] for k, t in enumerate(ordinary)})
    n = len(vocab)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, t in enumerate(MULTI_IN_VOCAB)]
    added += [{"id": n + k, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": t in MULTI_LATE, "special": t != " hello world"} for k, t in enumerate(MULTI_ADDED)]
    tok = hf_tokenizer(vocab, merges, as_pairs=True)
    tok["added_tokens"] = added
    with open(os.path.join(out, "multi.tokenizer.json"), "wb") as f:
        f.write(json.dumps(tok, ensure_ascii=False).encode())
    # GGUF has no second pass: its reference is the file with one pass
    tok["added_tokens"] = [dict(a, normalized=False) for a in added]
    with open(os.path.join(out, "multi_one.tokenizer.json"), "wb") as f:
        f.write(json.dumps(tok, ensure_ascii=False).encode())
    tok["added_tokens"] = []
    with open(os.path.join(out, "multi_text.tokenizer.json"), "wb") as f:
        f.write(json.dumps(tok, ensure_ascii=False).encode())
    strings = [None] * (n + len(MULTI_ADDED))
    for t, i in vocab.items():
        strings[i] = t
    for a in added:
        strings[a["id"]] = a["content"]
    types = [1] * len(strings)
    for a in added:
        types[a["id"]] = 3 if a["special"] else 4
    with open(os.path.join(out, "multi.gguf"), "wb") as f:
        f.write(gguf_file(strings, types, merges, n + 1))
    with open(os.path.join(out, "multi_specials.json"), "w") as f:
        json.dump({a["content"]: a["id"] for a in added}, f, ensure_ascii=False)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if sys.argv[2:] == ["--multi"]:
        with open(os.path.join(ROOT, "gpt2_weights", "encoder.json"), encoding="utf-8") as f:
            encoder = json.load(f)
        with open(os.path.join(ROOT, "gpt2_weights", "vocab.bpe"), encoding="utf-8") as f:
            multi(out, encoder, [ln for ln in f.read().split("\n")[1:] if ln])
        return
    with open(os.path.join(ROOT, "gpt2_weights", "encoder.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    with open(os.path.join(ROOT, "gpt2_weights", "vocab.bpe"), encoding="utf-8") as f:
        merges = [ln for ln in f.read().split("\n")[1:] if ln]
    n = len(encoder)
    by_id = [None] * n
    for tok, i in encoder.items():
        by_id[i] = tok

    def write(name, data, mode="wb"):
        with open(os.path.join(out, name), mode) as f:
            f.write(data)

    # Hugging Face
    rng = random.Random(20240328)
    perm = list(range(n))
    rng.shuffle(perm)
    perm_vocab = {tok: perm[i] for tok, i in encoder.items()}
    write("gpt2.tokenizer.json", json.dumps(hf_tokenizer(encoder, merges), ensure_ascii=False).encode())
    write("seq.tokenizer.json", json.dumps(hf_tokenizer(encoder, merges, sequence=True)).encode())
    write("perm.tokenizer.json",
          json.dumps(hf_tokenizer(perm_vocab, merges, as_pairs=True, eot_id=perm[50256]), ensure_ascii=False).encode())
    write("perm.vocab.json", json.dumps(perm_vocab).encode())
    write("perm.merges.txt", ("#version: 0.2\n" + "\n".join(merges) + "\n").encode())
    write("perm_hf.txt", " ".join(map(str, perm)) + "\n", "w")

    # tiktoken: GPT-2's ranks, then the single bytes moved among the merged
    # tokens (whose order, which is their rank order, stays)
    lines = ["%s %d" % (base64.b64encode(raw(by_id[i])).decode(), i) for i in range(n - 1)]
    write("gpt2.tiktoken", ("\n".join(lines) + "\n").encode())
    singles = [i for i in range(n - 1) if len(raw(by_id[i])) == 1]
    merged = [i for i in range(n - 1) if len(raw(by_id[i])) > 1]
    rng.shuffle(singles)
    order = merged[:]
    for s in singles:
        order.insert(rng.randrange(len(order) + 1), s)
    tperm = [0] * n
    for new, old in enumerate(order):
        tperm[old] = new
    tperm[n - 1] = n - 1  # <|endoftext|> stays after the last rank
    tlines = ["%s %d" % (base64.b64encode(raw(by_id[old])).decode(), new) for new, old in enumerate(order)]
    rng.shuffle(tlines)  # the line order does not matter, the ranks do
    write("perm.tiktoken", ("\n".join(tlines) + "\n").encode())
    write("perm_tiktoken.txt", " ".join(map(str, tperm)) + "\n", "w")

    # GGUF
    types = [3 if t == EOT else 1 for t in by_id]
    write("gpt2.gguf", gguf_file(by_id, types, merges, 50256))
    pt = [None] * n
    for i, t in enumerate(by_id):
        pt[perm[i]] = t
    write("perm.gguf", gguf_file(pt, [3 if t == EOT else 1 for t in pt], merges, perm[50256], version=2, pre="gpt-2"))

    # llm.c
    raws = [raw(t) for t in by_id]
    write("gpt2_tokenizer_v1.bin", llmc_file(raws, 1, 50256))
    write("gpt2_tokenizer_v2.bin", llmc_file(raws, 2, 50256))
    pr = [None] * n
    for i, t in enumerate(raws):
        pr[perm[i]] = t
    write("perm_tokenizer_v2.bin", llmc_file(pr, 2, perm[50256]))

    multi(out, encoder, merges)


if __name__ == "__main__":
    main()
