#!/usr/bin/python3
"""GPT-2's input stage with gpt2in, feeding a PyTorch module.

    make python
    PYTHONPATH=build/python /usr/bin/python3 -P tools/python/example_torch.py \
        [gpt2_weights/model.safetensors] ["some text"]

(-P: Python would otherwise import tools/python/gpt2in, the sources next
to this script, which lack the compiled extension.)

Text -> token ids (gpt2in's tokenizer, straight into a NumPy uint32 array)
-> token + position embeddings (gpt2in.Embedding, float32 [T, C]) -> a
torch tensor sharing that memory -> a LayerNorm, as GPT-2's first block
begins. Then the same input stage with torch.nn.Embedding and the same
weights, which must give the same bits.
"""
import sys

import numpy as np
import torch

import gpt2in


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "gpt2_weights/model.safetensors"
    text = sys.argv[2] if len(sys.argv) > 2 else "Hello, GPT-2! The input stage is two table lookups."
    enc = gpt2in.get_encoding("gpt2")
    emb = gpt2in.Embedding.open(path)

    ids = enc.encode_to_numpy(text)                  # uint32 [T]
    x = torch.from_numpy(emb.forward(ids))           # float32 [T, C], no copy
    ln = torch.nn.LayerNorm(emb.C)
    y = ln(x)
    print(f"{len(ids)} tokens -> x {tuple(x.shape)} -> LayerNorm {tuple(y.shape)}")

    # The reference: torch.nn.Embedding with the same weights.
    wte = torch.nn.Embedding.from_pretrained(torch.from_numpy(np.array(emb.wte, dtype=np.float32)))
    idx = torch.from_numpy(ids.astype(np.int64))
    ref = wte(idx)
    if emb.wpe is not None:
        wpe = torch.nn.Embedding.from_pretrained(torch.from_numpy(np.array(emb.wpe, dtype=np.float32)))
        ref = ref + wpe(torch.arange(len(ids)))
    same = torch.equal(x, ref)
    print("same as torch.nn.Embedding:", "yes" if same else "NO")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
