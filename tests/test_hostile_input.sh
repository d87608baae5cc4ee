#!/bin/sh
# Hostile and endless input to every token-id reader (issue 14): each bad
# input is one escaped line naming the file and the byte, exit status 2,
# after a bounded read (endless streams end, memory stays small); .npy ids
# stream; encode's npy/llmc writer never leaves a file that loads as the
# wrong array; a weights file truncated under its mapping is one line, exit
# 2; and the small command-line defects found with them.
# Every run is under `timeout $TO` (10 s, 30 under the sanitizers, which
# read /dev/zero's 128 MiB bound slowly): a reader that never stops fails
# the test (exit 124) instead of hanging it. /usr/bin/python3 with NumPy checks the
# .npy outputs; without it those parts are skipped (said at the end).
set -u
G=${GPT2IN:-build/gpt2in}
case $G in /*) ;; *) G=$PWD/$G ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/gpt2in-hostile.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
export G T
fails=0 n=0 skipped=
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
PY=
/usr/bin/python3 -c 'import numpy' 2>/dev/null && PY=/usr/bin/python3
# Memory is only measured without sanitizers (their shadow memory is large).
MEASURE=1
case $G in *asan*) MEASURE=0 ;; esac
[ "${SANITIZED:-0}" = 1 ] && MEASURE=0
TO=10
[ "${SANITIZED:-0}" = 1 ] && TO=30
[ -x /usr/bin/time ] || MEASURE=0

# run CMD: the shell command CMD under timeout $TO; stdout $T/out, stderr $T/err
run() { timeout $TO sh -c "$1" > "$T/out" 2> "$T/err"; rc=$?; }

# bad WHAT POSITION FILE CMD: CMD fails with exit 2 and one line 'gpt2in: ...'
# that names FILE (unless -) and POSITION (a whole word; unless -), with no
# control byte from the input in it.
bad() {
    what=$1 pos=$2 file=$3
    n=$((n + 1))
    run "$4"
    if [ "$rc" -ne 2 ]; then fail "$what: exit $rc, expected 2 ($(head -c 300 "$T/err"))"; return; fi
    [ "$(wc -l < "$T/err")" -eq 1 ] || fail "$what: not one line on stderr: $(head -c 300 "$T/err")"
    head -n 1 "$T/err" | grep -q '^gpt2in: ' || fail "$what: message does not start with 'gpt2in: '"
    [ "$file" = - ] || grep -qF -- "$file" "$T/err" || fail "$what: message does not name $file: $(cat "$T/err")"
    [ "$pos" = - ] || grep -qw -- "$pos" "$T/err" || fail "$what: message does not name position $pos: $(cat "$T/err")"
    # only printable ASCII, UTF-8 lead/continuation bytes and the newline
    [ "$(LC_ALL=C tr -d '\040-\176\200-\377\n' < "$T/err" | wc -c)" -eq 0 ] ||
        fail "$what: control bytes in the message: $(od -c "$T/err" | head -5)"
}

# peak KB of the gpt2in in "$1" (a shell command with $G) when it exits 2
peak_of() {
    timeout $TO sh -c "$(echo "$1" | sed 's|"\$G"|/usr/bin/time -f %M -o "$T/kb" "$G"|')" > /dev/null 2>&1
    tail -n 1 "$T/kb" 2>/dev/null
}
# small WHAT CMD: CMD's gpt2in peaks under 32 MB
small() {
    [ "$MEASURE" = 1 ] || return
    n=$((n + 1))
    kb=$(peak_of "$2")
    case $kb in '' | *[!0-9]*) fail "$1: no peak memory measured ($kb)"; return ;; esac
    [ "$kb" -lt 32768 ] || fail "$1: peak memory $kb KB, expected < 32768 KB"
}

# ---- endless and huge streams end at once, with little memory ---------------
bad "decode /dev/zero" 0 /dev/zero '"$G" decode /dev/zero'
bad "decode --input-format json /dev/zero" 0 /dev/zero '"$G" decode --input-format json /dev/zero'
bad "decode --input-format npy /dev/zero" - /dev/zero '"$G" decode --input-format npy /dev/zero'
bad "decode --input-format llmc /dev/zero" 0 /dev/zero '"$G" decode --input-format llmc /dev/zero'
bad "an endless run of digits" 0 '<stdin>' 'tr "\0" 1 < /dev/zero | "$G" decode'
bad "an endless run of digits after an id" 2 '<stdin>' '{ printf "5 "; tr "\0" 7 < /dev/zero; } | "$G" decode'
bad "an endless JSON id" 1 '<stdin>' '{ printf "["; tr "\0" 7 < /dev/zero; } | "$G" decode --input-format json'
bad "npy magic, then an endless stream" - '<stdin>' '{ printf "\223NUMPX"; cat /dev/zero; } | "$G" decode --input-format npy'
small "decode /dev/zero" '"$G" decode /dev/zero'
small "decode --input-format npy /dev/zero" '"$G" decode --input-format npy /dev/zero'
small "300 MB of digits" 'head -c 300000000 /dev/zero | tr "\0" 1 | "$G" decode'

"$G" init --out "$T/w.safetensors" --vocab 512 --ctx 64 --channels 8 > /dev/null 2>&1 ||
    fail "init of a small weights file failed"
bad "embed --weights W /dev/zero" 0 /dev/zero '"$G" embed --weights "$T/w.safetensors" -o "$T/x.npy" /dev/zero'
bad "embed of an endless run of digits" 0 '<stdin>' 'tr "\0" 3 < /dev/zero | "$G" embed --weights "$T/w.safetensors" -o "$T/x.npy"'
"$G" embed --weights "$T/w.safetensors" -o "$T/ref.npy" /dev/null 2> /dev/null
bad "verify --ids /dev/zero" 0 /dev/zero '"$G" verify --weights "$T/w.safetensors" --ids /dev/zero --ref "$T/ref.npy"'
# arrays and weights read whole from stdin: an .npy ends where its header
# says (then trailing bytes), a kind no reader takes at its first bytes
bad "inspect < /dev/zero" - '<stdin>' '"$G" inspect < /dev/zero'
printf '1 2\n' > "$T/i2.txt"
"$G" embed --weights "$T/w.safetensors" -o "$T/ref2.npy" "$T/i2.txt" 2> /dev/null
bad "an .npy, then an endless stream, to inspect" - '<stdin>' '{ cat "$T/ref2.npy"; cat /dev/zero; } | "$G" inspect'
bad "an .npy, then an endless stream, to verify --ref -" - '<stdin>' '{ cat "$T/ref2.npy"; cat /dev/zero; } | "$G" verify --weights "$T/w.safetensors" --ids "$T/i2.txt" --ref -'
bad "an .npy, then an endless stream, to step --dout -" - '<stdin>' '{ cat "$T/ref2.npy"; cat /dev/zero; } | "$G" step --weights "$T/w.safetensors" --ids "$T/i2.txt" --dout - --optimizer sgd --lr 0.1 --out "$T/w2.safetensors"'
n=$((n + 1))
"$G" verify --weights "$T/w.safetensors" --ids "$T/i2.txt" --ref - < "$T/ref2.npy" > /dev/null 2>&1 || fail "verify --ref - of a whole .npy: exit $?"
bad "endless ids as verify --ref -" - '<stdin>' 'yes 5 | "$G" verify --weights "$T/w.safetensors" --ids "$T/i2.txt" --ref -'

# ---- each reader: one line, the file, the byte ------------------------------
printf '1 2 x3 4' > "$T/a.txt"
bad "text: a non-numeric id" 4 a.txt '"$G" decode "$T/a.txt"'
printf '1 2\n-5 4' > "$T/a.txt"
bad "text: a negative id" 4 a.txt '"$G" decode "$T/a.txt"'
printf '7 50257' > "$T/a.txt"
bad "text: an id outside the vocabulary" 2 a.txt '"$G" decode "$T/a.txt"'
printf '7 000000000000000000000000000001' > "$T/a.txt"
bad "text: an id of more than 20 bytes" 2 a.txt '"$G" decode "$T/a.txt"'
printf '[1, 2, x]' > "$T/a.json"
bad "json: a non-numeric id" 7 a.json '"$G" decode "$T/a.json"'
printf '[1, 2' > "$T/a.json"
bad "json: unterminated" 5 a.json '"$G" decode "$T/a.json"'
printf '[1 2]' > "$T/a.json"
bad "json: no comma" 3 a.json '"$G" decode "$T/a.json"'
printf '[1] 5' > "$T/a.json"
bad "json: data after the array" 4 a.json '"$G" decode "$T/a.json"'
printf '  {1}' > "$T/a.json"
bad "json: no array" 2 a.json '"$G" decode "$T/a.json"'
printf '\001\000\002' > "$T/a.u16"
bad "u16: an odd number of bytes" 3 a.u16 '"$G" decode --input-format u16 "$T/a.u16"'
printf '\001\000\377\377' > "$T/a.u16"
bad "u16: an id outside the vocabulary" 2 a.u16 '"$G" decode --input-format u16 "$T/a.u16"'
printf '\001\000\000\000\377\377\377\377' > "$T/a.u32"
bad "u32: an id outside the vocabulary" 4 a.u32 '"$G" decode --input-format u32 "$T/a.u32"'
echo 'hi there' | "$G" encode --format llmc > "$T/a.llmc" 2>/dev/null
head -c 1026 "$T/a.llmc" > "$T/b.llmc"
bad "llmc: truncated data" 1026 b.llmc '"$G" decode --input-format llmc "$T/b.llmc"'
{ cat "$T/a.llmc"; printf 'xy'; } > "$T/b.llmc"
bad "llmc: more tokens than the count" 1030 b.llmc '"$G" decode --input-format llmc "$T/b.llmc"'
echo 'hi there' | "$G" encode --format npy > "$T/a.npy" 2>/dev/null
head -c 133 "$T/a.npy" > "$T/b.npy"
bad "npy: truncated data" 132 b.npy '"$G" decode "$T/b.npy"'
{ cat "$T/a.npy"; printf 'x'; } > "$T/b.npy"
bad "npy: data after the shape" 140 b.npy '"$G" decode "$T/b.npy"'
head -c 20 "$T/a.npy" > "$T/b.npy"
bad "npy: truncated header" - b.npy '"$G" decode "$T/b.npy"'
{ head -c 128 "$T/a.npy"; printf '\377\377\377\377'; tail -c +133 "$T/a.npy"; } > "$T/b.npy"
bad "npy: a negative id" 128 b.npy '"$G" decode "$T/b.npy"'

# ---- terminal escapes from the input are escaped in messages ----------------
bad "escape sequences in a text id" 3 '<stdin>' 'printf "12 \033]0;PWNED\007\033[31mRED 5" | "$G" decode'
grep -qF '\x1b]0;PWNED\x07' "$T/err" || fail "the escape sequence is not shown escaped: $(od -c "$T/err" | head -3)"
bad "escape sequences in JSON" 4 '<stdin>' 'printf "[1, \033[2J]" | "$G" decode --input-format json'
bad "an escape after a JSON array" 3 '<stdin>' 'printf "[1]\033c" | "$G" decode --input-format json'
bad "a bidi override in an id" 0 '<stdin>' 'printf "\342\200\2561" | "$G" decode'
printf 'x' > "$T/$(printf 'a\033[31mb')"
bad "an escape in a file name" 0 'a\x1b[31mb' '"$G" decode "$T/$(printf "a\033[31mb")"'
bad "an escape in a missing file's name" - 'c\x1b[31md' '"$G" decode "$T/$(printf "c\033[31md")"'

# ---- weights files: names from the command line and from inside the file ------
# A tensor named "a<ESC>[2Jz<U+202E><U+E000>" (JSON escapes in the header),
# I32: a control, a bidi override and a private-use character, none shown.
hdr='{"a\u001b[2Jz\u202e\ue000":{"dtype":"I32","shape":[1,1],"data_offsets":[0,4]}}'
{ printf '\120\000\000\000\000\000\000\000'; printf '%s  ' "$hdr"; printf '\000\000\000\000'; } > "$T/esc.st"
[ "$(printf '%s  ' "$hdr" | wc -c)" -eq 80 ] || fail "esc.st: the header is not 80 bytes"
printf '1\n' > "$T/i1.txt"
escaped() {  # escaped WHAT FILE: no ESC, BEL or U+202E byte in FILE
    if grep -q "$(printf '\033')" "$2" || grep -q "$(printf '\007')" "$2" || grep -q "$(printf '\342\200\256')" "$2"; then
        fail "$1: a control or bidi character is printed raw: $(od -c "$2" | head -3)"
    fi
}
n=$((n + 1)); "$G" inspect "$T/esc.st" > "$T/out" 2>&1; escaped "inspect of a tensor name" "$T/out"
grep -qF 'a\x1b[2Jz\xe2\x80\xae\xee\x80\x80' "$T/out" || fail "inspect: the tensor name is not shown escaped: $(cat "$T/out")"
n=$((n + 1)); "$G" inspect --json "$T/esc.st" > "$T/out" 2>&1; escaped "inspect --json of a tensor name" "$T/out"
grep -qF 'a\u001b[2Jz\u202e\ue000' "$T/out" || fail "inspect --json: the name is not written with \\u escapes: $(cat "$T/out")"
n=$((n + 1)); "$G" embed --weights "$T/esc.st" --tensor "$(printf 'a\033[2Jz\342\200\256\356\200\200')" "$T/i1.txt" > /dev/null 2> "$T/err"
escaped "embed --tensor NAME of an I32 tensor" "$T/err"
grep -q '^gpt2in: .*I32' "$T/err" || fail "embed of an I32 tensor: $(cat "$T/err")"
n=$((n + 1)); "$G" embed --weights "$T/esc.st" --tensor "$(printf 'no\033[2Jsuch')" "$T/i1.txt" > /dev/null 2> "$T/err"
escaped "embed --tensor of a missing name" "$T/err"
W=$(printf 'w\033]0;PWNED\007')
n=$((n + 1)); "$G" embed --weights "$T/$W" "$T/i1.txt" > /dev/null 2> "$T/err"; escaped "a missing weights file's name" "$T/err"
cp "$T/esc.st" "$T/$W"
for c in embed verify similar; do
    n=$((n + 1))
    case $c in
        embed) "$G" embed --weights "$T/$W" "$T/i1.txt" ;;
        verify) "$G" verify --weights "$T/$W" --ids "$T/i1.txt" --ref "$T/esc.st" ;;
        similar) "$G" similar --weights "$T/$W" a b ;;
    esac > /dev/null 2> "$T/err"
    escaped "$c --weights W<ESC>" "$T/err"
    grep -qF 'x1b]0;PWNED\x07' "$T/err" || fail "$c: the file name is not shown escaped: $(cat "$T/err")"
done
# vocabulary files: their names, and what the JSON parser quotes from them
n=$((n + 1)); printf 'x' | "$G" encode --vocab "$T/$W" > /dev/null 2> "$T/err"; escaped "encode --vocab W<ESC>" "$T/err"
grep -qF 'x1B]0;PWNED\x07' "$T/err" || fail "encode --vocab: the file name is not shown escaped: $(cat "$T/err")"
n=$((n + 1)); printf 'x' | "$G" encode --encoder "$T/$W" --merges "$T/$W" > /dev/null 2> "$T/err"; escaped "encode --encoder W<ESC>" "$T/err"
printf '{"a": 1, "b": "\342\200\256evil\033[2J' > "$T/bidi.json"
n=$((n + 1)); printf 'x' | "$G" encode --vocab "$T/bidi.json" > /dev/null 2> "$T/err"; escaped "a JSON error near a bidi override" "$T/err"
# UTF-8 is shown as it is: a file name and an added special token; a bidi
# override in a name is not
printf 'abc' > "$T/日本.txt"
bad "encode --vocab of a UTF-8 name" - '日本.txt' 'printf x | "$G" encode --vocab "$T/日本.txt"'
cp "$T/日本.txt" "$T/$(printf 'r\342\200\256l.txt')"
n=$((n + 1)); printf 'x' | "$G" encode --vocab "$T/$(printf 'r\342\200\256l.txt')" > /dev/null 2> "$T/err"
escaped "encode --vocab of a name with U+202E" "$T/err"
grep -qF 'r\xE2\x80\xAEl.txt' "$T/err" || fail "encode --vocab: U+202E in a name is not escaped: $(cat "$T/err")"
if [ -n "$PY" ]; then
    $PY - "$T/jp.json" <<'PYEOF'
import json, sys
W = "gpt2_weights/"
enc = json.load(open(W + "encoder.json"))
merges = [l for l in open(W + "vocab.bpe", encoding="utf-8").read().split("\n")[1:] if l]
at = lambda i, c: {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                   "normalized": False, "special": True}
json.dump({"version": "1.0", "added_tokens": [at(50256, "<|endoftext|>"), at(50257, "日本語X")],
           "normalizer": None,
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
           "post_processor": None, "decoder": None,
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                     "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": enc,
                     "merges": merges}}, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)
PYEOF
    bad "an added token 日本語X in the text" 2 '"日本語X"' 'printf "ab日本語X" | "$G" encode --vocab "$T/jp.json"'
else
    skipped="$skipped added-token-message"
fi
# a name with a quote: escaped once, by the library, as in every message
cp "$T/esc.st" "$T/a\"b.st" && printf 'xx' >> "$T/a\"b.st"
bad "inspect of a file named a\"b.st" - 'a\x22b.st' '"$G" inspect "$T/a\"b.st"'
grep -qF 'x5c' "$T/err" && fail "inspect: the file name is escaped twice: $(cat "$T/err")"

# Many metadata keys, one repeated at the end: found in linear time (each
# key was compared with all before it: 100,000 keys took 30-50 s).
if [ -n "$PY" ]; then
    $PY - "$T" <<'PYEOF'
import struct, sys
t = sys.argv[1]
n = 400000
meta = ",".join('"k%d":"v"' % i for i in range(n)) + ',"k77":"x"'
h = ('{"__metadata__":{' + meta + '},"w":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}').encode()
open(t + "/keys.st", "wb").write(struct.pack("<Q", len(h)) + h + bytes(4))
def s(x): return struct.pack("<Q", len(x)) + x
kv = b"".join(s(b"k%d" % i) + struct.pack("<I", 4) + struct.pack("<I", i) for i in range(n // 4))
kv += s(b"k77") + struct.pack("<I", 4) + struct.pack("<I", 0)
open(t + "/keys.gguf", "wb").write(b"GGUF" + struct.pack("<IQQ", 3, 0, n // 4 + 1) + kv)
PYEOF
    bad "400,000 metadata keys, one repeated" 5488907 keys.st '"$G" inspect "$T/keys.st"'
    grep -qF '"k77"' "$T/err" || fail "the repeated key is not named: $(cat "$T/err")"
    bad "100,000 GGUF keys, one repeated" - keys.gguf '"$G" inspect "$T/keys.gguf"'
    grep -qF 'appears twice (key-values 77 and 100000)' "$T/err" || fail "GGUF: $(cat "$T/err")"
else
    skipped="$skipped metadata-keys"
fi

# ---- .npy ids stream ----------------------------------------------------------
if [ -n "$PY" ]; then
    n=$((n + 1))
    $PY -c "import numpy as np; np.save('$T/ids.npy', np.arange(200_000, dtype=np.int64) % 50000)"
    "$G" decode "$T/ids.npy" | cksum > "$T/got.sum"
    $PY -c "import numpy as np; print(*(np.arange(200_000) % 50000).tolist())" | "$G" decode | cksum > "$T/want.sum"
    cmp -s "$T/got.sum" "$T/want.sum" || fail "decode of .npy ids differs from the same ids as text"
    if [ "$MEASURE" = 1 ]; then
        # 4M int64 ids (32 MB): read whole, they took 64 MB at the peak
        $PY -c "import numpy as np; np.save('$T/big.npy', np.zeros(4_000_000, dtype=np.int64))"
        /usr/bin/time -f %M -o "$T/kb" "$G" decode "$T/big.npy" > /dev/null
        kb=$(tail -n 1 "$T/kb")
        [ "$kb" -lt 16384 ] || fail "decode of 4M .npy ids (32 MB) peaked at $kb KB, expected < 16384"
    fi
else
    skipped="$skipped .npy-streaming"
fi

# ---- encode --format npy|llmc: no wrong file --------------------------------
for f in npy llmc; do
    n=$((n + 1))
    printf 'old\n' > "$T/app.$f"
    echo 'hello world' | timeout $TO "$G" encode --format $f >> "$T/app.$f" 2> "$T/err"; rc=$?
    [ $rc -eq 2 ] || fail "encode --format $f >> FILE: exit $rc, expected 2"
    [ "$(cat "$T/app.$f")" = old ] || fail "encode --format $f >> FILE changed the file"
    grep -q 'append' "$T/err" || fail "encode --format $f >> FILE: the message does not say why: $(cat "$T/err")"
    # through a pipe: held, then written whole
    echo 'hello world' | "$G" encode --format $f | cat > "$T/pipe.$f"
    [ "$("$G" decode --input-format $f "$T/pipe.$f")" = "hello world" ] || fail "encode --format $f | cat is wrong"
done
# A killed run leaves a file no reader takes for an (empty) array: the run is
# fed 3 MB of text (the stream encodes blocks of 1 MB) through a FIFO that
# stays open, and killed once 64 KB of ids (past the header) are in the file.
mkfifo "$T/fifo"
for f in npy llmc; do
    n=$((n + 1))
    "$G" encode --threads 1 --format $f < "$T/fifo" > "$T/killed.$f" 2> /dev/null &
    pid=$!
    exec 8> "$T/fifo"
    yes 'hello world' | head -c 3000000 >&8
    i=0
    while [ "$(wc -c < "$T/killed.$f")" -lt 65536 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    kill -9 $pid 2> /dev/null
    wait $pid 2> /dev/null
    exec 8>&-
    [ "$(wc -c < "$T/killed.$f")" -ge 65536 ] || { fail "encode --format $f wrote nothing before it was killed"; continue; }
    timeout $TO "$G" decode --input-format $f "$T/killed.$f" > /dev/null 2> "$T/err" &&
        fail "a killed encode --format $f leaves a file decode accepts"
    if [ $f = npy ] && [ -n "$PY" ]; then
        $PY -c "import numpy as np, sys; np.load(sys.argv[1])" "$T/killed.npy" 2> /dev/null &&
            fail "a killed encode --format npy leaves a file np.load accepts"
    fi
done
if [ -n "$PY" ]; then
    n=$((n + 1))
    yes 'hello world' | head -c 100000 > "$T/text"
    "$G" encode --format npy "$T/text" > "$T/good.npy"
    "$G" encode "$T/text" | tr -s ' \n' '\n\n' | sed '/^$/d' > "$T/good.txt"
    $PY -c "
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.loadtxt(sys.argv[2], dtype=np.int64)
sys.exit(0 if a.dtype == np.int32 and a.shape == b.shape and (a == b).all() else 1)" "$T/good.npy" "$T/good.txt" ||
        fail "encode --format npy > FILE does not load as the ids"
else
    skipped="$skipped np.load"
fi

# ---- a weights file truncated while mapped: one line, exit 2 ----------------
n=$((n + 1))
cp "$T/w.safetensors" "$T/trunc.safetensors"
rm -f "$T/fifo2"; mkfifo "$T/fifo2"
"$G" embed --weights "$T/trunc.safetensors" --format f32 -o /dev/null "$T/fifo2" 2> "$T/err" &
pid=$!
exec 7> "$T/fifo2"   # embed is past opening the weights once its input opens
i=0
while ! grep -q trunc.safetensors /proc/$pid/maps 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
: > "$T/trunc.safetensors"
seq 0 511 >&7
exec 7>&-
wait $pid; rc=$?
[ $rc -eq 2 ] || fail "embed over a weights file truncated while mapped: exit $rc, expected 2"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -q 'trunc.safetensors' "$T/err" ||
    fail "embed over a truncated weights file: not one line naming it: $(cat "$T/err")"

# the other mapped files: step's Adam state, verify's safetensors reference.
# tests/shrink_mapped.c (LD_PRELOAD) truncates the file right after mapping it.
if cc -shared -fPIC -o "$T/shrink.so" tests/shrink_mapped.c -ldl 2> /dev/null; then
    echo 1 > "$T/one.txt"
    "$G" embed --weights "$T/w.safetensors" -o "$T/dout.npy" "$T/one.txt"
    adam='"$G" step --weights "$T/w.safetensors" --ids "$T/one.txt" --dout "$T/dout.npy" --optimizer adam --lr 0.1'
    run "$adam --state \"\$T/st.safetensors\" --out \"\$T/a1.safetensors\""
    [ $rc -eq 0 ] || fail "step --optimizer adam: exit $rc: $(cat "$T/err")"
    shrink() {  # WHAT FILE CMD: CMD with FILE truncated once mapped fails in one line naming it
        n=$((n + 1))
        run "GPT2IN_SHRINK=\"$2\" LD_PRELOAD=\"\$T/shrink.so\" ASAN_OPTIONS=verify_asan_link_order=0 $3"
        [ $rc -eq 2 ] || fail "$1: exit $rc, expected 2: $(head -c 300 "$T/err")"
        [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q "$(basename "$2").*shrank" "$T/err" ||
            fail "$1: not one line naming $(basename "$2"): $(cat "$T/err")"
    }
    shrink "step over a state file truncated while mapped" "$T/st.safetensors" \
        "$adam --state \"\$T/st.safetensors\" --out \"\$T/a2.safetensors\""
    cp "$T/w.safetensors" "$T/ref.safetensors"
    shrink "verify over a reference truncated while mapped" "$T/ref.safetensors" \
        '"$G" verify --weights "$T/w.safetensors" --ids "$T/one.txt" --ref "$T/ref.safetensors:wte"'
else
    skipped="$skipped shrink_mapped"
fi

# ---- small command-line defects ---------------------------------------------
n=$((n + 1))
"$G" count --help | head -n 1 | grep -q 'gpt2in count' || fail "count --help does not describe count"
bad "count --offsets is refused" - - 'echo hi | "$G" count --offsets'
bad "--help > /dev/full" - - '"$G" encode --help > /dev/full'
grep -q 'write error: No space' "$T/err" || fail "--help > /dev/full: $(cat "$T/err")"
bad "gpt2in --help > /dev/full" - - '"$G" --help > /dev/full'
yes 'hello world' | head -c 300000 > "$T/big.txt"
bad "encode big.txt > /dev/full" - - '"$G" encode "$T/big.txt" > /dev/full'
grep -q '^gpt2in: <stdout>: write error: ' "$T/err" || fail "encode > /dev/full: wording: $(cat "$T/err")"
bad "encode --format npy big.txt > /dev/full" - - '"$G" encode --format npy "$T/big.txt" > /dev/full'
bad "decode > /dev/full" - - 'echo 31373 | "$G" decode > /dev/full'
grep -q '^gpt2in: <stdout>: write error: ' "$T/err" || fail "decode > /dev/full: wording: $(cat "$T/err")"
bad "count > /dev/full" - - '"$G" count "$T/big.txt" > /dev/full'
# a step that works with --lr 16 (so only the number's spelling can fail it)
echo 1 > "$T/one.txt"
"$G" embed --weights "$T/w.safetensors" -o "$T/dout.npy" "$T/one.txt"
step='"$G" step --weights "$T/w.safetensors" --ids "$T/one.txt" --dout "$T/dout.npy" --optimizer sgd --out "$T/o.safetensors" --lr'
n=$((n + 1))
run "$step 16" && [ "$rc" -eq 0 ] || fail "step --lr 16: exit $rc: $(cat "$T/err")"
for lr in 0x10 0X1p4 ' 16' 16x infinity; do
    bad "--lr '$lr'" - - "$step '$lr'"
    grep -q -- '--lr' "$T/err" || fail "--lr '$lr': the message does not name --lr: $(cat "$T/err")"
done
n=$((n + 1))
echo 31373 > "$T/-x"
(cd "$T" && "$G" decode -- -x) > "$T/out" 2>&1 && [ "$(cat "$T/out")" = hello ] || fail "decode -- -x: $(cat "$T/out")"
echo hello > "$T/-x"
(cd "$T" && "$G" encode -- -x) > "$T/out" 2>&1 && [ "$(cat "$T/out")" = "31373 198" ] || fail "encode -- -x: $(cat "$T/out")"
(cd "$T" && "$G" count -- -x) > "$T/out" 2>&1 && [ "$(cat "$T/out")" = 2 ] || fail "count -- -x: $(cat "$T/out")"

# `--` ends the options of every command: what follows is an operand (a file
# or word named "-x", even "--help"); commands without operands accept it too
"$G" init --out "$T/wv.safetensors" --vocab 50257 --ctx 64 --channels 8 > /dev/null 2>&1 ||
    fail "init of a full-vocabulary weights file failed"
echo 1 > "$T/-x"
cp "$T/w.safetensors" "$T/-w"
dd_ok() {  # WHAT CMD: CMD (run in $T) exits 0
    n=$((n + 1))
    (cd "$T" && timeout $TO sh -c "$2") > "$T/out" 2> "$T/err" || fail "$1: exit $?: $(head -c 300 "$T/err")"
}
dd_ok "embed -- -x" '"$G" embed --weights w.safetensors --format f32 -- -x'
dd_ok "inspect -- -w" '"$G" inspect -- -w'
dd_ok "neighbors -- --help" '"$G" neighbors --weights wv.safetensors -- --help'
grep -q usage "$T/out" && fail "neighbors -- --help printed the usage"
dd_ok "similar -- -x -y" '"$G" similar --weights wv.safetensors -- -x -y'
dd_ok "analogy -- -a -b -c" '"$G" analogy --weights wv.safetensors -- -a -b -c'
dd_ok "plot -- -x -y -z" '"$G" plot --weights wv.safetensors --out p.svg -- -x -y -z'
dd_ok "init ... --" '"$G" init --out i.safetensors --vocab 16 --ctx 4 --channels 4 --'
dd_ok "verify ... --" '"$G" verify --weights w.safetensors --ids one.txt --ref dout.npy --'
dd_ok "step ... --" '"$G" step --weights w.safetensors --ids one.txt --dout dout.npy --optimizer sgd --lr 1 --out s.safetensors --'
yes 'the cat sat on the mat with a kitten and a dog and a puppy and a car' | head -n 50 > "$T/corpus.txt"
dd_ok "train-skipgram ... --" '"$G" train-skipgram --weights wv.safetensors --corpus corpus.txt --out t.safetensors --epochs 1 --'
bad "init -- --full" - - '"$G" init --out "$T/i.safetensors" -- --full'
grep -q 'unexpected argument "--full"' "$T/err" || fail "init -- --full: $(cat "$T/err")"

# argv strings in messages are escaped: no control byte from them on stderr
ESC=$(printf '\033]0;PWNED\007')
export ESC
for c in encode decode count embed verify step init plot inspect similar neighbors analogy train-skipgram; do
    bad "$c --ESC" - - "\"\$G\" $c \"--\$ESC\""
    grep -qF 'x1b]0;PWNED' "$T/err" || fail "$c --ESC: the option is not shown escaped: $(cat "$T/err")"
done
bad "step --lr ESC" - - "$step \"\$ESC\""
bad "similar -k ESC" - - '"$G" similar --weights "$T/wv.safetensors" -k "$ESC" cat'
bad "verify --atol ESC" - - '"$G" verify --atol "$ESC"'
bad "embed --format ESC" - - '"$G" embed --format "$ESC"'
bad "train-skipgram --epochs ESC" - - '"$G" train-skipgram --epochs "$ESC"'
bad "train-skipgram --pairs ESC" - - '"$G" train-skipgram --weights "$T/wv.safetensors" --corpus "$T/corpus.txt" --out "$T/t1.safetensors" --pairs "$ESC"'
printf '1 2 3\n' > "$T/three.txt"
"$G" embed --weights "$T/w.safetensors" -o "$T/d$ESC.npy" "$T/three.txt"
bad "step --dout NAME-WITH-ESC of the wrong shape" - - "$step 1 --dout \"\$T/d\$ESC.npy\""

# every failed write: one line "gpt2in: <where>: write error: <reason>", exit 2
for f in npy f32 text; do
    bad "embed --format $f > /dev/full" - - '"$G" embed --weights "$T/w.safetensors" --format '$f' "$T/one.txt" > /dev/full'
    grep -q '^gpt2in: <stdout>: write error: No space' "$T/err" || fail "embed --format $f > /dev/full: wording: $(cat "$T/err")"
done
bad "embed -o /dev/full" - - '"$G" embed --weights "$T/w.safetensors" -o /dev/full "$T/one.txt"'
grep -q '^gpt2in: /dev/full: write error: No space' "$T/err" || fail "embed -o /dev/full: wording: $(cat "$T/err")"
# a named FIFO whose reader left: the same one line, not a silent SIGPIPE
rm -f "$T/fifo3"; mkfifo "$T/fifo3"
for i in $(seq 20); do seq 0 511; done > "$T/many.txt"
( head -c 1 < "$T/fifo3" > /dev/null & )
bad "embed -o FIFO whose reader left" - - '"$G" embed --weights "$T/w.safetensors" --format f32 -o "$T/fifo3" "$T/many.txt"'
grep -q 'fifo3: write error: Broken pipe' "$T/err" || fail "embed -o FIFO: wording: $(cat "$T/err")"
# an output name is escaped too
bad "embed -o NAME-WITH-ESC" - - '"$G" embed --weights "$T/w.safetensors" -o "/nonexistent$ESC/x" "$T/one.txt"'
bad "verify > /dev/full" - - '"$G" verify --weights "$T/w.safetensors" --ids "$T/one.txt" --ref "$T/dout.npy" > /dev/full'
grep -q '^gpt2in: <stdout>: write error: No space' "$T/err" || fail "verify > /dev/full: wording: $(cat "$T/err")"
bad "init --out /dev/full" - /dev/full '"$G" init --out /dev/full --seed 1'
grep -q '^gpt2in: /dev/full: write error: No space' "$T/err" || fail "init --out /dev/full: wording: $(cat "$T/err")"

# train-skipgram holds its corpus in memory: an endless one is refused at a bound
bad "train-skipgram --corpus /dev/zero" - /dev/zero '"$G" train-skipgram --weights "$T/wv.safetensors" --corpus /dev/zero --out "$T/t0.safetensors"'
grep -q -- '--max-bytes' "$T/err" || fail "train-skipgram --corpus /dev/zero: no --max-bytes advice: $(cat "$T/err")"
bad "train-skipgram --max-bytes 100000 --corpus /dev/zero" - /dev/zero '"$G" train-skipgram --weights "$T/wv.safetensors" --max-bytes 100000 --corpus /dev/zero --out "$T/t0.safetensors"'
small "train-skipgram --max-bytes 100000 --corpus /dev/zero" '"$G" train-skipgram --weights "$T/wv.safetensors" --max-bytes 100000 --corpus /dev/zero --out "$T/t0.safetensors"'
if [ "$MEASURE" = 1 ]; then  # the default bound, 128 MiB, plus the program
    n=$((n + 1))
    kb=$(peak_of '"$G" train-skipgram --weights "$T/wv.safetensors" --corpus /dev/zero --out "$T/t0.safetensors"')
    case $kb in '' | *[!0-9]*) fail "train-skipgram /dev/zero: no peak memory ($kb)" ;;
        *) [ "$kb" -lt 200000 ] || fail "train-skipgram /dev/zero: peak memory $kb KB" ;; esac
fi

# the library says what is wrong, the command line adds its advice, once
bad "<|endoftext|> in the text" 3 '<stdin>' 'printf "hi <|endoftext|> x" | "$G" encode'
[ "$(grep -o -- '--special allow' "$T/err" | wc -l)" -eq 1 ] || fail "the --special advice is not there once: $(cat "$T/err")"

[ -z "$skipped" ] || echo "skipped (no /usr/bin/python3 with NumPy, or no cc):$skipped"
echo "$n checks, $fails failed"
[ "$fails" -eq 0 ]
