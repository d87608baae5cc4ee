#!/bin/sh
# The Python package (tools/python) against the C library it wraps and npm
# tiktoken, on the tokenizer benchmark's corpora (tests/bench/make_corpora.py;
# /usr/share/common-licenses when its packages are missing):
#   lib       the library alone: one bpe_encode of the same text (the str's
#             UTF-8), one thread, into a warm output buffer, as
#             tests/bench/bench_bpe_lib.c calls it; through the package's
#             CoreBPE.encode_into (the GIL released, no Python object made),
#             so it is the very copy of the library the package runs, in the
#             same process, call for call beside the Python methods.
#             bpe_encode makes a fresh piece cache for each text of 64 KB or
#             more, so its calls start cold
#   lib kept  the same with one bpe_encoder_encode on an encoder kept from
#             call to call (encode_into(..., kept=True)), warm: what the
#             package's calls do. Ratios are given to both: "/lib" to one
#             bpe_encode, "/lk" to the kept encoder's call
#   python    Encoding.encode_ordinary(text) -> list of ints, and
#             encode_to_numpy(text) -> uint32 array. encode_ordinary twice:
#             "encode", each list dropped before the next call (a loop over
#             texts: the allocator serves the freed list's memory again,
#             warm), and "kept", every list kept (a corpus gathered in
#             memory: each list's memory is fresh, to be faulted in), in
#             rounds of its own after the others (lists kept alive change
#             what the allocator hands the calls that drop theirs)
#             CPU time is given for the calling thread (the library runs on
#             it) and, for encode, for the whole process: a text above 4 MB
#             has a helper thread, where another core is likely idle, that
#             faults its list's memory in and widens the ids
#   tiktoken  npm tiktoken's encode_ordinary inside Node (tests/oracle/bench.js);
#             the tiktoken Python package cannot be installed here (no PyPI)
# then encode_to_numpy on 100 MB beside the library on it, and the cost of one call on a 10-byte
# string (Python: encode_ordinary; Node: tiktoken's encode_ordinary), and
# Embedding.forward for T = 8192 beside torch.nn.functional.embedding (one
# thread each) on a random GPT-2-sized table.
# then decode_batch on the corpora cut into 64 lists, one thread and all.
# Best of BENCH_ROUNDS (default 3) runs each (more for a corpus below 20 MB:
# as many as 20 MB would get, up to 50; lists kept: up to 10); the library
# and the Python calls take turns, round after round. The corpora include the first 1 MB of
# english.txt (the target: under 10% over the library from 1 MB up). Python's figures leave out the
# first call's conversion of the str to UTF-8 (which CPython then keeps
# with the str; tiktoken needs it too). MB = 10^6 bytes. The machine's load
# (uptime) is printed before and after.
set -u
cd "$(dirname "$0")/../.." || exit 2
GPT2IN=${GPT2IN:-build/gpt2in}
B=$(dirname "$GPT2IN")
LIB=$B/libgpt2in.a
PY=/usr/bin/python3
ROUNDS=${BENCH_ROUNDS:-3}
[ -f "$LIB" ] || { echo "bench_python: $LIB is not built (make)"; exit 2; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
root=$(pwd)
case $LIB in /*) root= ;; esac  # an absolute build folder
(cd tools/python && GPT2IN_LIB="$root/$LIB" $PY setup.py -q build --build-base "$tmp/pybuild" \
    --build-lib "$tmp/py" > "$tmp/build.log" 2>&1) ||
    { cat "$tmp/build.log"; echo "bench_python: cannot build the extension"; exit 2; }

corp=$tmp/corpora
if sh tools/deps.sh install-bench > /dev/null 2>&1 && $PY tests/bench/make_corpora.py "$corp" > /dev/null 2>&1; then
    $PY -c 'import sys; d=open(sys.argv[1],"rb").read(1000000); open(sys.argv[2],"wb").write(d[:d.rindex(b"\n")+1])' \
        "$corp/english.txt" "$corp/english-1MB.txt"
    files="$corp/english-1MB.txt $corp/english.txt $corp/code.txt $corp/multilingual.txt $corp/base64.txt"
else
    echo "(make_corpora.py's packages are missing: the corpus is /usr/share/common-licenses/*)"
    mkdir -p "$corp"
    cat /usr/share/common-licenses/* > "$corp/licenses.txt"
    files="$corp/licenses.txt"
fi
# 100 MB for encode_to_numpy: the corpora, repeated
: > "$tmp/big.txt"
while [ "$(wc -c < "$tmp/big.txt")" -lt 100000000 ]; do cat $files >> "$tmp/big.txt"; done
head -c 100000000 "$tmp/big.txt" > "$tmp/big100.txt"
# Cut inside a UTF-8 character? Trim to the last newline.
$PY -c 'import sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[1],"wb").write(d[:d.rindex(b"\n")+1])' "$tmp/big100.txt"

have_node=1
sh tests/oracle/install.sh > "$tmp/install.log" 2>&1 || { have_node=0; echo "tiktoken: $(tail -n 1 "$tmp/install.log")"; }

if [ $have_node = 1 ]; then node tests/oracle/bench.js --runs "$ROUNDS" $files > "$tmp/tikt.txt" || exit 2
else : > "$tmp/tikt.txt"; fi

if [ $have_node = 1 ]; then
    node -e '
const o = require("./tests/oracle/oracle.js"); const s = "hello wor!"; const n = 200000;
let best = Infinity;
for (let r = 0; r < Number(process.argv[1]); r++) {
  const t = process.hrtime.bigint(); for (let i = 0; i < n; i++) o.enc.encode_ordinary(s);
  best = Math.min(best, Number(process.hrtime.bigint() - t) / n); }
console.log(best.toFixed(0));' "$ROUNDS" > "$tmp/call.txt" || exit 2
else : > "$tmp/call.txt"; fi

echo "load before: $(uptime)"
PYTHONPATH="$tmp/py" $PY - "$ROUNDS" "$tmp/tikt.txt" "$tmp/big100.txt" $files <<'PYEOF'
import sys, time, os
import numpy as np
import gpt2in
from gpt2in import _gpt2in
rounds, tikt_f, big = int(sys.argv[1]), sys.argv[2], sys.argv[3]
files = sys.argv[4:]
enc = gpt2in.get_encoding("gpt2")
tikt = {l.split()[0]: l.split() for l in open(tikt_f)}

# the library itself, in this process: one bpe_encode of the str's UTF-8
# into a buffer reused from call to call (as tests/bench/bench_bpe_lib.c
# does), the GIL released
def lib_encode(text, out):
    return enc._core.encode_into(text, _gpt2in.SPECIAL_TEXT, out)

# the same with an encoder the package keeps (bpe_encoder_encode), as the
# package's own calls encode
def lib_kept(text, out):
    return enc._core.encode_into(text, _gpt2in.SPECIAL_TEXT, out, True)

def best(f, n=rounds):
    b = float("inf")
    for _ in range(n):
        t = time.perf_counter(); r = f(); b = min(b, time.perf_counter() - t)
    return b, r

def cpu(f):
    # the calling thread's CPU time: the library runs on it, the GIL
    # released; less moved by other programs than the clock on the wall
    t = time.thread_time(); r = f(); return time.thread_time() - t, r

def pcpu(f):
    # the process's CPU time, all threads: a text above 4 MB has a helper
    # thread (where a core is likely idle) that faults in and widens its
    # list while the calling thread encodes
    t = time.process_time(); r = f(); return time.process_time() - t, r

print(f"{'corpus':<13} {'MB':>6} {'tokens':>9} | {'lib 1t':>8} {'lib kept':>8} {'encode':>8} {'kept':>8} {'numpy':>8} | "
      f"{'enc/lib':>8} {'enc/lk':>8} {'kept/lk':>8} {'np/lk':>8} | {'cpu e/l':>8} {'cpu e/lk':>8} {'cpu k/lk':>8} "
      f"{'pcpu e/lk':>9} | "
      f"{'tiktoken':>8} {'enc/tikt':>8} | helper")
for f in files:
    text = open(f, encoding="utf-8").read()
    out = np.empty(max(1, len(text.encode())), np.uint32)
    enc.encode_ordinary(text)   # warm-up; also makes the str's UTF-8 form, which it keeps
    lib_encode(text, out)
    lib_kept(text, out)
    # the library, encode_ordinary and encode_to_numpy call after call, so
    # that a slow spell of the shared machine hits them alike
    tl = tlk = te = tn = cl = ck = ce = tw = cw = pk = pe = float("inf")
    # more rounds for shorter texts (a call of a few ms is at the mercy of
    # one interruption): as many as 20 MB would get, up to 50
    size = len(text.encode())
    nr = max(rounds, min(50, rounds * 20_000_000 // max(size, 1)))
    for _ in range(nr):
        t, n = best(lambda: lib_encode(text, out), 1)
        tl = min(tl, t)
        t, nk = best(lambda: lib_kept(text, out), 1)
        tlk = min(tlk, t)
        t, ids = best(lambda: enc.encode_ordinary(text), 1)
        te = min(te, t)
        del ids
        cl = min(cl, cpu(lambda: lib_encode(text, out))[0])
        ck = min(ck, cpu(lambda: lib_kept(text, out))[0])
        c, ids = cpu(lambda: enc.encode_ordinary(text))
        ce = min(ce, c)
        del ids
        pk = min(pk, pcpu(lambda: lib_kept(text, out))[0])
        c, ids = pcpu(lambda: enc.encode_ordinary(text))
        pe = min(pe, c)
        del ids
        t, arr = best(lambda: enc.encode_to_numpy(text, disallowed_special=()), 1)
        tn = min(tn, t)
        del arr
    # every list kept, in rounds of their own (a list kept alive changes
    # what the allocator gives the calls that drop theirs), beside the
    # kept encoder's call
    hold = []
    for _ in range(min(nr, 10)):
        ck = min(ck, cpu(lambda: lib_kept(text, out))[0])
        t0 = time.perf_counter()
        c, ids = cpu(lambda: enc.encode_ordinary(text))
        tw = min(tw, time.perf_counter() - t0)
        cw = min(cw, c)
        hold.append(ids)
        del ids
    del hold
    ids = enc.encode_ordinary(text)
    helper = "-" if len(text.encode()) <= 4 << 20 else "yes" if enc._core._filled >= 0 else "no"
    assert n == nk == len(ids), (f, n, nk, len(ids))
    tk = tikt.get(f)
    tks = f"{float(tk[3]):8.3f} {float(tk[3]) / te:7.2f}x" if tk else f"{'-':>8} {'-':>8}"
    mb = os.path.getsize(f) / 1e6
    print(f"{os.path.basename(f)[:-4]:<13} {mb:6.1f} {len(ids):9d} | {tl:8.3f} {tlk:8.3f} {te:8.3f} {tw:8.3f} {tn:8.3f} | "
          f"{te / tl:7.3f}x {te / tlk:7.3f}x {tw / tlk:7.3f}x {tn / tlk:7.3f}x | {ce / cl:7.3f}x {ce / ck:7.3f}x "
          f"{cw / ck:7.3f}x {pe / pk:8.3f}x | {tks} | {helper}")
    del ids, text, out
print("(seconds; lib: one bpe_encode a call (a fresh piece cache each); lib kept: one bpe_encoder_encode on a kept"
      " encoder, as the package calls it; enc/lib, enc/lk: encode_ordinary's time over the library's, 1.00x = no"
      " overhead; kept/lk: the same with every list kept; np/lk: encode_to_numpy; cpu ...: the same in CPU time of"
      " the calling thread; pcpu e/lk: encode in CPU time of the whole process (a helper thread's too) over the"
      " kept encoder's; enc/tikt > 1: tiktoken slower; helper: whether the last encode_ordinary had a helper thread)")

# decode_batch: the corpora as 64 lists of ids, on one thread and on all
ids = [enc.encode_to_numpy(open(f, encoding="utf-8").read(), disallowed_special=()) for f in files]
lists = [a[i * len(a) // 16:(i + 1) * len(a) // 16].tolist() for a in ids for i in range(16)][:64]
ntok = sum(map(len, lists))
t1 = ta = float("inf")
for _ in range(rounds):
    t1 = min(t1, best(lambda: enc.decode_batch(lists, num_threads=1), 1)[0])
    ta = min(ta, best(lambda: enc.decode_batch(lists, num_threads=os.cpu_count() or 1), 1)[0])
print(f"decode_batch, {len(lists)} lists, {ntok} tokens: one thread {t1:.3f} s, {os.cpu_count()} threads "
      f"{ta:.3f} s ({t1 / ta:.2f}x)")
del ids, lists

text = open(big, encoding="utf-8").read()
mb = len(text.encode()) / 1e6
out = np.empty(int(mb * 1e6), np.uint32)
lib_encode(text, out)
tl = tk = tn = float("inf")
for _ in range(max(1, min(rounds, 2))):
    tl = min(tl, best(lambda: lib_encode(text, out), 1)[0])
    tk = min(tk, best(lambda: lib_kept(text, out), 1)[0])
    t, arr = best(lambda: enc.encode_to_numpy(text, disallowed_special=()), 1)
    tn = min(tn, t)
    n = len(arr)
    del arr
print(f"encode_to_numpy on {mb:.0f} MB: {tn:.2f} s, {n} tokens ({mb / tn:.1f} MB/s); "
      f"the library {tl:.2f} s (one bpe_encode), {tk:.2f} s (kept encoder); numpy / library {tn / tl:.3f}x, "
      f"{tn / tk:.3f}x")
del out, text

s = "hello wor!"
n = 200000
eo = enc.encode_ordinary
def calls():
    for _ in range(n):
        eo(s)
t, _ = best(calls)
print(f"one call on a 10-byte string: encode_ordinary {t / n * 1e9:.0f} ns", end="")
e = enc.encode
def calls2():
    for _ in range(n):
        e(s)
t2, _ = best(calls2)
node_ns = open(os.path.join(os.path.dirname(tikt_f), "call.txt")).read().strip()
print(f", encode {t2 / n * 1e9:.0f} ns" + (f"; npm tiktoken encode_ordinary {node_ns} ns" if node_ns else ""))
print(f"load after the tokenizer runs: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")

# Embedding.forward for T = 8192 against torch on a GPT-2-sized table.
try:
    import numpy as np, torch, json, struct, tempfile
except ImportError as e:
    print(f"(forward: {e})")
    raise SystemExit(0)
V, C, MAXT, T = 50257, 768, 1024, 8192
rng = np.random.default_rng(0)
wte = rng.standard_normal((V, C), dtype=np.float32) * 0.02
wpe = rng.standard_normal((MAXT, C), dtype=np.float32) * 0.01
hdr = json.dumps({"wte.weight": {"dtype": "F32", "shape": [V, C], "data_offsets": [0, wte.nbytes]},
                  "wpe.weight": {"dtype": "F32", "shape": [MAXT, C],
                                 "data_offsets": [wte.nbytes, wte.nbytes + wpe.nbytes]}}).encode()
hdr += b" " * (-len(hdr) % 8)
path = os.path.join(os.path.dirname(big), "model.safetensors")
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr + wte.tobytes() + wpe.tobytes())
emb = gpt2in.Embedding.open(path)
ids = rng.integers(0, V, (T // MAXT, MAXT))   # [8, 1024]: positions 0..1023 in each row
out = np.empty((T // MAXT, MAXT, C), np.float32)
torch.set_num_threads(1)
W, P = torch.from_numpy(wte), torch.from_numpy(wpe)
idx, pos = torch.from_numpy(ids), torch.arange(MAXT)
tout = torch.empty(T // MAXT, MAXT, C)
emb.forward(ids, out=out)
tg, _ = best(lambda: emb.forward(ids, out=out), max(rounds, 5))
tt, _ = best(lambda: torch.add(torch.nn.functional.embedding(idx, W), torch.nn.functional.embedding(pos, P), out=tout),
             max(rounds, 5))
assert np.array_equal(out, tout.numpy())
print(f"forward, T = {T} ([8, 1024] ids, F32 768 columns, one thread): gpt2in {tg * 1e3:.2f} ms, "
      f"torch F.embedding + positions {tt * 1e3:.2f} ms ({tt / tg:.2f}x)")
PYEOF
