#!/usr/bin/python3
"""fineweb_style.py JSONL OUTDIR NPROC [SHARD_TOKENS] - llm.c's dev/data/fineweb.py
pipeline, for tests/bench/bench_shard.sh to time beside gpt2in shard: a
multiprocessing Pool maps documents (JSON Lines, field "text") to
[<|endoftext|>] + encode_ordinary(text) as uint16 arrays (imap, chunksize 16,
in order), the main process fills shards of SHARD_TOKENS (default 10^8) in
a numpy buffer and writes them as fineweb.py does (256 int32 header,
20240520, 1, count; first shard val, then train). The encoder is the
project's own Python package (tools/python: tiktoken's API), since the
tiktoken Python package cannot be installed here; on the same machine it
encodes several times faster than tiktoken, which flatters this pipeline."""
import json
import multiprocessing as mp
import os
import sys

import numpy as np

import gpt2in

enc = gpt2in.get_encoding("gpt2")
EOT = enc.eot_token


def tokenize(line):
    tokens = [EOT]
    tokens.extend(enc.encode_ordinary(json.loads(line)["text"]))
    a = np.array(tokens)
    assert (0 <= a).all() and (a < 2**16).all(), "token dictionary too large for uint16"
    return a.astype(np.uint16)


def write_datafile(filename, toks):
    header = np.zeros(256, dtype=np.int32)
    header[0], header[1], header[2] = 20240520, 1, len(toks)
    with open(filename, "wb") as f:
        f.write(header.tobytes())
        f.write(toks.tobytes())


def main():
    path, out, nprocs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    shard_size = int(sys.argv[4]) if len(sys.argv) > 4 else 10**8
    os.makedirs(out, exist_ok=True)
    with open(path, encoding="utf-8") as f, mp.Pool(nprocs) as pool:
        lines = (l for l in f if l.strip())
        index, count = 0, 0
        buf = np.empty((shard_size,), dtype=np.uint16)
        for tokens in pool.imap(tokenize, lines, chunksize=16):
            while len(tokens):
                take = min(shard_size - count, len(tokens))
                buf[count:count + take] = tokens[:take]
                count += take
                tokens = tokens[take:]
                if count == shard_size:
                    split = "val" if index == 0 else "train"
                    write_datafile(os.path.join(out, "fineweb_%s_%06d.bin" % (split, index)), buf)
                    index, count = index + 1, 0
        if count:
            split = "val" if index == 0 else "train"
            write_datafile(os.path.join(out, "fineweb_%s_%06d.bin" % (split, index)), buf[:count])


if __name__ == "__main__":
    main()
