#!/bin/sh
# bench_similarity - nearest rows by cosine over GPT-2's whole wte (50257 x 768,
# F32, mapped from a safetensors file at an unaligned offset like the real
# checkpoint): embed_nearest in C against NumPy doing the same in one process
# (matrix-vector product, norms, argpartition), best of several runs each;
# then `gpt2in neighbors` end to end against a NumPy script end to end.
set -u
cd "$(dirname "$0")/../.." || exit 2
B=${B:-build}
G=$B/gpt2in
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/gpt2in-bench-sim.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
W=gpt2_weights/model.safetensors
if [ ! -f "$W" ]; then
    W=$T/full.safetensors
    "$G" init --full --out "$W" --seed 0 >/dev/null || exit 1
    echo "table: gpt2in init --full (GPT-2's layout, random values; the real file is not here)"
else
    echo "table: $W"
fi
cc -std=c11 -D_GNU_SOURCE -O2 -Iembed -Ibpe tests/bench/bench_nearest.c "$B/libgpt2in.a" \
    -lutf8proc -lm -pthread -o "$T/bench_nearest" || exit 1
c_ms=$("$T/bench_nearest" "$W" 20 | cut -d' ' -f1)

cat >"$T/np.py" <<'PYEOF'
import json, struct, sys, time
import numpy as np
path, reps = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
t = h.get("wte.weight") or h["transformer.wte.weight"]
s, e = t["data_offsets"]
w = np.memmap(path, dtype="<f4", mode="r", offset=8 + n + s, shape=tuple(t["shape"]))
w = np.ascontiguousarray(w)          # in memory, as the C side reads a mapped page-cache copy
q = w[3797].copy()
best = 1e9
for _ in range(reps):
    t0 = time.perf_counter()
    sc = (w @ q) / (np.linalg.norm(w, axis=1) * np.linalg.norm(q))
    sc[3797] = -np.inf
    top = np.argpartition(-sc, 10)[:10]
    top = top[np.argsort(-sc[top])]
    best = min(best, time.perf_counter() - t0)
print("%.3f %d" % (best * 1e3, top[0]))
PYEOF
if [ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null; then
    np_ms=$("$PY" "$T/np.py" "$W" 10 | cut -d' ' -f1)
else
    np_ms=""
fi
echo
printf '%-52s %10s\n' "top-10 by cosine over 50257 x 768 (best run)" "ms"
printf '%-52s %10s\n' "embed_nearest (C, one thread, norms computed)" "$c_ms"
[ -n "$np_ms" ] && printf '%-52s %10s\n' "NumPy (w @ q, norms, argpartition)" "$np_ms"
[ -n "$np_ms" ] && awk -v a="$np_ms" -v b="$c_ms" 'BEGIN { printf "ratio NumPy / gpt2in: %.1fx\n", a / b }'

# End to end: start, open the file, tokenize the word, scan, print.
e2e() { # command...
    best=999999
    for i in 1 2 3 4 5; do
        s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
        t=$(( (e - s) / 1000000 )); [ $t -lt $best ] && best=$t
    done
    echo $best
}
g_ms=$(e2e "$G" neighbors --weights "$W" -k 10 cat)
echo
printf '%-52s %10s\n' "end to end, one query (best of 5)" "ms"
printf '%-52s %10s\n' "gpt2in neighbors --weights W -k 10 cat" "$g_ms"
if [ -n "$np_ms" ]; then
    p_ms=$(e2e "$PY" "$T/np.py" "$W" 1)
    printf '%-52s %10s\n' "python3 + NumPy script (load, scan once)" "$p_ms"
fi
