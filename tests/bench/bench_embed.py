#!/usr/bin/python3
"""PyTorch's side of bench_embed.sh: the same work as bench_embed.c, on a
50257 x 768 float32 table, with the same thread count. Prints "key value"
lines. Timings are the best of several runs.

    /usr/bin/python3 tests/bench/bench_embed.py THREADS T...
"""
import sys
import time

import torch
import torch.nn.functional as F

V, C, MAXT = 50257, 768, 1024


def best(fn, reps):
    b = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        b = min(b, time.perf_counter() - t0)
    return b


def main():
    threads = int(sys.argv[1])
    Ts = [int(x) for x in sys.argv[2:]]
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    W = torch.randn(V, C, generator=g) * 0.02
    P = torch.randn(MAXT, C, generator=g) * 0.01
    print(f"torch_version {torch.__version__}")
    print(f"torch_threads {torch.get_num_threads()}")
    for T in Ts:
        reps = 10 if T >= 65536 else 30
        ids = torch.randint(0, V, (T,), generator=g)
        pos = torch.arange(T) % MAXT
        out = torch.empty(T, C)
        nbytes = T * C * 4
        # F.embedding allocates its output each call (no out= argument)
        t = best(lambda: F.embedding(ids, W), reps)
        print(f"torch_embedding_{T}_ms {t * 1e3:.4f}\ntorch_embedding_{T}_gbs {nbytes / t / 1e9:.2f}")
        # the same gather into a preallocated buffer
        t = best(lambda: torch.index_select(W, 0, ids, out=out), reps)
        print(f"torch_index_select_out_{T}_ms {t * 1e3:.4f}\n"
              f"torch_index_select_out_{T}_gbs {nbytes / t / 1e9:.2f}")
        # with positions, still into preallocated buffers
        pe = torch.empty(T, C)

        def with_pos():
            torch.index_select(W, 0, ids, out=out)
            torch.index_select(P, 0, pos, out=pe)
            torch.add(out, pe, out=out)
        t = best(with_pos, reps)
        print(f"torch_pos_out_{T}_ms {t * 1e3:.4f}\ntorch_pos_out_{T}_gbs {nbytes / t / 1e9:.2f}")
    # sparse backward + SGD step, T = 8192 (the forward is outside the timer)
    T = 8192
    ids = torch.randint(0, V, (T,), generator=g)
    dout = torch.randn(T, C, generator=g)
    Wp = torch.nn.Parameter(W.clone())
    opt = torch.optim.SGD([Wp], lr=1e-4)
    b = float("inf")
    for _ in range(30):
        opt.zero_grad(set_to_none=True)
        y = F.embedding(ids, Wp, sparse=True)
        t0 = time.perf_counter()
        y.backward(dout)
        opt.step()
        b = min(b, time.perf_counter() - t0)
    print(f"torch_bwd_sgd_{T}_ms {b * 1e3:.4f}")


if __name__ == "__main__":
    main()
