#!/bin/sh
# No user file is ever modified in place, deleted or left half-written:
# every command that writes a named file (embed -o, init, step --out/--state,
# plot, train-skipgram) goes through the library's one writer (a temporary
# .NAME.tmp.XXXXXX next to the target, renamed over it on success), refuses
# an output that is one of its inputs (by device and inode: through a
# symlink, a hard link, or stdin) before reading anything, follows a symlink
# and replaces its target, writes a character device or FIFO straight
# through (the node stays what it was), and refuses a directory or an empty
# name up front.
# Careful: the process runs as root on the test machine, where a broken
# binary would replace /dev/null; /dev/null is only used as an output after
# the FIFO checks have shown that device nodes are left alone.
set -u
: "${GPT2IN:=build/gpt2in}"
: "${SANITIZED:=0}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
cli_name=outsafe; . tests/cli_setup.sh
G=$(cd "$(dirname "$G")" && pwd)/$(basename "$G")  # absolute: one check runs elsewhere
d=$T
kill_pid=
cleanup() { [ -n "$kill_pid" ] && kill -9 "$kill_pid" 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT
# intact FILE WHAT: FILE is byte for byte its copy FILE.orig
intact() { cmp -s "$1" "$1.orig" || fail "$2: $1 was changed or removed"; }
# no_temp WHAT: no temporary file left in $d
no_temp() {
    left=$(ls -A "$d" | grep '\.tmp\.' | head -n 3)
    [ -z "$left" ] || fail "$1: temporary files left behind: $left"
}

M=tests/fixtures/embed/f32/model.safetensors  # V 300, C 48
W=$d/w.safetensors
cp "$M" "$W" && cp "$W" "$W.orig"
printf '1 2 3\n' >"$d/ids.txt" && cp "$d/ids.txt" "$d/ids.txt.orig"
cp tests/fixtures/embed/f32/ids.npy "$d/ids.npy" && cp "$d/ids.npy" "$d/ids.npy.orig"
"$G" embed --weights "$M" -o "$d/want.npy" "$d/ids.txt" || fail "embed to a new file"
"$G" embed --weights "$M" --format f32 "$d/ids.txt" >"$d/want.f32" || fail "embed to stdout"

# ---- embed: an output that is an input is refused, the input untouched --------
expect 2 "embed -o WEIGHTS" "$G" embed --weights "$W" -o "$W" "$d/ids.txt"
one_line "embed -o WEIGHTS" "same file"; intact "$W" "embed -o WEIGHTS"
ln -s w.safetensors "$d/wlink"
expect 2 "embed -o symlink-to-WEIGHTS" "$G" embed --weights "$W" -o "$d/wlink" "$d/ids.txt"
intact "$W" "embed -o symlink-to-WEIGHTS"
[ -L "$d/wlink" ] || fail "embed -o symlink-to-WEIGHTS: the link is gone"
ln "$W" "$d/whard"
expect 2 "embed -o hard-link-of-WEIGHTS" "$G" embed --weights "$W" -o "$d/whard" "$d/ids.txt"
intact "$W" "embed -o hard-link-of-WEIGHTS"
rm -f "$d/whard"
expect 2 "embed -o IDS.npy IDS.npy" "$G" embed --weights "$M" -o "$d/ids.npy" "$d/ids.npy"
one_line "embed -o IDS.npy IDS.npy" "same file"; intact "$d/ids.npy" "embed -o IDS.npy IDS.npy"
expect 2 "embed -o IDS.txt IDS.txt" "$G" embed --weights "$M" -o "$d/ids.txt" "$d/ids.txt"
intact "$d/ids.txt" "embed -o IDS.txt IDS.txt"
expect 2 "embed -o IDS < IDS" sh -c '"$1" embed --weights "$2" -o "$3" <"$3"' - "$G" "$M" "$d/ids.txt"
intact "$d/ids.txt" "embed -o IDS < IDS"
expect 2 "embed IDS >> IDS" sh -c '"$1" embed --weights "$2" "$3" >>"$3"' - "$G" "$M" "$d/ids.txt"
intact "$d/ids.txt" "embed IDS >> IDS"
no_temp "embed refusals"
# a name as long as a file name may be (255 bytes): the temporary's is shortened
long=$(printf 'a%.0s' $(seq 1 251)).npy
expect 0 "embed -o 255-byte name" "$G" embed --weights "$M" -o "$d/$long" "$d/ids.txt"
cmp -s "$d/$long" "$d/want.npy" || fail "embed -o 255-byte name: not the output of embed"
rm -f "$d/$long"
no_temp "embed -o 255-byte name"
# encode, count and decode write to stdout: onto their input it is refused too
"$G" decode "$d/ids.txt" >"$d/text.txt" && cp "$d/text.txt" "$d/text.txt.orig"
for c in encode count; do
    expect 2 "$c TEXT >> TEXT" sh -c '"$1" "$2" "$3" >>"$3"' - "$G" $c "$d/text.txt"
    one_line "$c TEXT >> TEXT" "same file"; intact "$d/text.txt" "$c TEXT >> TEXT"
    expect 2 "$c < TEXT 1<> TEXT" sh -c '"$1" "$2" <"$3" 1<>"$3"' - "$G" $c "$d/text.txt"
    intact "$d/text.txt" "$c < TEXT 1<> TEXT"
done
expect 2 "decode IDS 1<> IDS" sh -c '"$1" decode "$2" 1<>"$2"' - "$G" "$d/ids.txt"
one_line "decode IDS 1<> IDS" "same file"; intact "$d/ids.txt" "decode IDS 1<> IDS"
# so do inspect, verify, similar, neighbors and analogy
expect 2 "inspect W >> W" sh -c '"$1" inspect "$2" >>"$2"' - "$G" "$W"
one_line "inspect W >> W" "same file"; intact "$W" "inspect W >> W"
expect 2 "inspect W 1<> W" sh -c '"$1" inspect --json "$2" 1<>"$2"' - "$G" "$W"
intact "$W" "inspect W 1<> W"
cp "$d/want.npy" "$d/ref.npy" && cp "$d/ref.npy" "$d/ref.npy.orig"
for f in "$W" "$d/ids.txt" "$d/ref.npy"; do
    expect 2 "verify >> $(basename "$f")" sh -c '"$1" verify --weights "$2" --ids "$3" --ref "$4" >>"$5"' - "$G" "$W" "$d/ids.txt" "$d/ref.npy" "$f"
    intact "$f" "verify >> $(basename "$f")"
done
expect 2 "verify --ref REF:TENSOR >> REF" sh -c '"$1" verify --weights "$2" --ids "$3" --ref "$2:wte.weight" >>"$2"' - "$G" "$W" "$d/ids.txt"
intact "$W" "verify --ref REF:TENSOR >> REF"
expect 2 "similar >> W" sh -c '"$1" similar --weights "$2" a b >>"$2"' - "$G" "$W"
one_line "similar >> W" "same file"; intact "$W" "similar >> W"
expect 2 "neighbors >> W" sh -c '"$1" neighbors --weights "$2" a >>"$2"' - "$G" "$W"
intact "$W" "neighbors >> W"
expect 2 "analogy >> W" sh -c '"$1" analogy --weights "$2" a b c >>"$2"' - "$G" "$W"
intact "$W" "analogy >> W"

# ---- a failed encode leaves no output a reader takes for a whole one -----------
# (2.5 MB of text, more than the 1 MB blocks, then a byte that is not UTF-8)
i=0; : > "$d/bad.txt"
while [ $i -lt 200 ]; do cat "$d/text.txt" "$d/text.txt" "$d/text.txt" >> "$d/bad.txt"; i=$((i + 1)); done
while [ "$(wc -c < "$d/bad.txt")" -lt 2500000 ]; do cat "$d/bad.txt" "$d/bad.txt" > "$d/bad2.txt"; mv "$d/bad2.txt" "$d/bad.txt"; done
printf '\344' >> "$d/bad.txt"
for f in npy llmc json; do
    expect 2 "encode --strict --format $f, bad UTF-8 at the end" sh -c '"$1" encode --strict --format "$2" "$3" > "$4"' - "$G" $f "$d/bad.txt" "$d/failed.$f"
    [ -s "$d/failed.$f" ] || fail "encode --format $f: nothing written before the error (the test needs ids before it)"
    "$G" decode "$d/failed.$f" > /dev/null 2>&1 && fail "encode --format $f: a failed run left an output decode reads whole"
    { "$G" encode --strict --format $f "$d/bad.txt" 2>/dev/null; echo $? > "$d/rc"; } | cat > "$d/failed.$f"
    [ "$(cat "$d/rc")" = 2 ] || fail "encode --strict --format $f to a pipe: exit $(cat "$d/rc"), expected 2"
    "$G" decode "$d/failed.$f" > /dev/null 2>&1 && [ -s "$d/failed.$f" ] && fail "encode --format $f | cat: a failed run left an output decode reads whole"
done
# ---- 1<> FILE: the ids replace the whole file, no old tail left after them ------
head -c 100000 "$d/bad.txt" > "$d/old.out"
for f in npy text; do
    printf 'Hello world' | "$G" encode --format $f 1<>"$d/old.out" || fail "encode --format $f 1<> FILE: exit $?"
    printf 'Hello world' | "$G" encode --format $f > "$d/new.out"
    cmp -s "$d/old.out" "$d/new.out" || fail "encode --format $f 1<> FILE: the old file's tail is still there"
done
# embed and decode too (any command that writes to stdout; embed patches its
# npy header at the start and must end at its last row, not the file's end)
printf '1 2 3\n' > "$d/ids3.txt"
"$G" embed --weights "$M" "$d/ids3.txt" > "$d/new.out" || fail "embed > FILE: exit $?"
head -c 100000 "$d/bad.txt" > "$d/old.out"
"$G" embed --weights "$M" "$d/ids3.txt" 1<>"$d/old.out" || fail "embed 1<> FILE: exit $?"
cmp -s "$d/old.out" "$d/new.out" || fail "embed 1<> FILE: the old file's tail is still there"
head -c 100000 "$d/bad.txt" > "$d/old.out"
"$G" decode "$d/ids3.txt" > "$d/new.out" || fail "decode > FILE: exit $?"
"$G" decode "$d/ids3.txt" 1<>"$d/old.out" || fail "decode 1<> FILE: exit $?"
cmp -s "$d/old.out" "$d/new.out" || fail "decode 1<> FILE: the old file's tail is still there"
# a command that writes nothing to stdout leaves a 1<> file alone
"$G" embed --weights "$M" -o "$d/o3.npy" "$d/ids3.txt" 1<>"$d/old.out" || fail "embed -o F 1<> FILE: exit $?"
cmp -s "$d/old.out" "$d/new.out" || fail "embed -o F 1<> FILE: stdout's file was changed"

# ---- stdout or stdin closed by the caller -----------------------------------------
# The first file a command opens would take the closed number: the weights
# file as "stdout" (-o /dev/stdout renamed the output over it) or as the ids.
cp "$M" "$d/w.st" && cp "$M" "$d/w.st.orig"
"$G" embed --weights "$d/w.st" -o /dev/stdout "$d/ids3.txt" >&- 2>"$d/err"
[ $? -eq 2 ] || fail "embed -o /dev/stdout, stdout closed: not refused"
one_line "embed -o /dev/stdout, stdout closed" "standard output, which is closed"
intact "$d/w.st" "embed -o /dev/stdout, stdout closed"
"$G" embed --weights "$d/w.st" "$d/ids3.txt" >&- 2>"$d/err"
[ $? -eq 2 ] || fail "embed to a closed stdout: not refused"
one_line "embed to a closed stdout" "standard output is closed"
"$G" plot --weights "$d/w.st" --out /dev/stdout cat dog >&- 2>"$d/err"
[ $? -eq 2 ] || fail "plot --out /dev/stdout, stdout closed: not refused"
intact "$d/w.st" "plot --out /dev/stdout, stdout closed"
"$G" embed --weights "$d/w.st" -o "$d/o4.npy" <&- 2>"$d/err"
[ $? -eq 2 ] || fail "embed from a closed stdin: exit 0"
one_line "embed from a closed stdin" "<stdin>"
intact "$d/w.st" "embed from a closed stdin"
printf 'hi' | "$G" encode 2>&- >"$d/out" || fail "encode with stderr closed: exit $?"

# ---- a failing embed leaves an existing output as it was ----------------------
printf 'x' >"$d/prev.npy" && cp "$d/prev.npy" "$d/prev.npy.orig"
printf '5 300 2\n' >"$d/bad.txt"
expect 2 "embed with a bad id" "$G" embed --weights "$M" -o "$d/prev.npy" "$d/bad.txt"
intact "$d/prev.npy" "embed with a bad id over an existing output"
expect 2 "embed with a bad id, new output" "$G" embed --weights "$M" -o "$d/new.npy" "$d/bad.txt"
[ -e "$d/new.npy" ] && fail "embed with a bad id: a new output was left behind"
no_temp "failing embed"

# ---- symlinks are followed: the target is replaced, the link stays -------------
printf 'old' >"$d/target.npy"
ln -s target.npy "$d/link.npy"
expect 0 "embed -o symlink" "$G" embed --weights "$M" -o "$d/link.npy" "$d/ids.txt"
[ -L "$d/link.npy" ] || fail "embed -o symlink: the link was replaced by a file"
cmp -s "$d/target.npy" "$d/want.npy" || fail "embed -o symlink: the target does not hold the output"
ln -s sub/made.npy "$d/dangling.npy"; mkdir "$d/sub"
expect 0 "embed -o dangling symlink" "$G" embed --weights "$M" -o "$d/dangling.npy" "$d/ids.txt"
[ -L "$d/dangling.npy" ] || fail "embed -o dangling symlink: the link was replaced"
cmp -s "$d/sub/made.npy" "$d/want.npy" || fail "embed -o dangling symlink: target not created"

# ---- a FIFO is written straight through and stays a FIFO -----------------------
mkfifo "$d/fifo"
fifo_ok=1
# fifo_run WHAT CMD...: runs CMD writing to $d/fifo while cat reads it into $d/got
fifo_run() {
    what=$1; shift
    rm -f "$d/got"
    cat "$d/fifo" >"$d/got" &
    reader=$!
    ok=1
    "$@" >"$d/out" 2>"$d/err" || { rc=$?; ok=0; fail "$what: exit $rc"; sed 's/^/    /' "$d/err" | head -3; }
    if [ ! -p "$d/fifo" ]; then
        ok=0; fifo_ok=0; fail "$what: the FIFO was replaced or removed"
        rm -f "$d/fifo"; mkfifo "$d/fifo"
    fi
    # a command that failed, or replaced the FIFO, may never have opened it
    [ $ok = 1 ] || kill $reader 2>/dev/null
    wait $reader 2>/dev/null
}
fifo_run "embed -o FIFO" "$G" embed --weights "$M" --format f32 -o "$d/fifo" "$d/ids.txt"
cmp -s "$d/got" "$d/want.f32" || fail "embed -o FIFO: wrong bytes"
fifo_run "embed -o FIFO (npy)" "$G" embed --weights "$M" -o "$d/fifo" "$d/ids.txt"
grep -qF "'shape': (3, 48)" "$d/got" || fail "embed -o FIFO (npy): header without the real shape"
"$G" init --out "$d/small.safetensors" --vocab 50 --ctx 4 --channels 8 --seed 5 || fail "init"
fifo_run "init --out FIFO" "$G" init --out "$d/fifo" --vocab 50 --ctx 4 --channels 8 --seed 5
cmp -s "$d/got" "$d/small.safetensors" || fail "init --out FIFO: not the same bytes as a file"
no_temp "FIFO outputs"

# ---- character devices: only once FIFOs showed nodes are left alone -------------
if [ $fifo_ok = 1 ] && [ -c /dev/null ]; then
    expect 0 "embed -o /dev/null" "$G" embed --weights "$M" -o /dev/null "$d/ids.txt"
    expect 0 "init --out /dev/null" "$G" init --out /dev/null --vocab 50 --ctx 4 --channels 8
    [ -c /dev/null ] || fail "/dev/null is no longer a character device"
    if [ -c /dev/full ]; then   # a device that fails every write
        expect 2 "init --out /dev/full" "$G" init --out /dev/full --vocab 50 --ctx 4 --channels 8
        one_line "init --out /dev/full" "/dev/full"
        # more than the 1 MB buffer, so the error comes from embed's own writes
        awk 'BEGIN { for (i = 0; i < 8000; i++) print i % 300 }' >"$d/8k.txt"
        expect 2 "embed -o /dev/full" "$G" embed --weights "$M" -o /dev/full "$d/8k.txt"
        one_line "embed -o /dev/full" "/dev/full"
        [ -c /dev/full ] || fail "/dev/full is no longer a character device"
    fi
else
    echo "character devices: not checked (the FIFO checks failed)"
fi

# ---- refused before any work: a directory, an empty name, a socket ------------
mkdir "$d/dir"
expect 2 "init --out DIR/" "$G" init --out "$d/dir/" --vocab 50 --ctx 4 --channels 8
one_line "init --out DIR/" "is a directory"
expect 2 "init --out DIR" "$G" init --out "$d/dir" --vocab 50 --ctx 4 --channels 8
one_line "init --out DIR" "is a directory"
expect 2 "embed -o DIR" "$G" embed --weights "$M" -o "$d/dir" "$d/ids.txt"
one_line "embed -o DIR" "is a directory"
expect 2 "init --out ''" "$G" init --out '' --vocab 50 --ctx 4 --channels 8
one_line "init --out ''" "empty"
grep -q '^gpt2in: : ' "$d/err" && fail "init --out '': message without a name: $(cat "$d/err")"
expect 2 "embed -o ''" "$G" embed --weights "$M" -o '' "$d/ids.txt"
one_line "embed -o ''" "empty"
expect 2 "init --out NODIR/x" "$G" init --out "$d/nodir/x.safetensors" --vocab 50 --ctx 4 --channels 8
one_line "init --out NODIR/x" "nodir"
[ -z "$(ls -A "$d/dir")" ] || fail "refused outputs left files in the directory: $(ls -A "$d/dir")"
if /usr/bin/python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
        "$d/sock" 2>/dev/null; then
    expect 2 "init --out SOCKET" "$G" init --out "$d/sock" --vocab 50 --ctx 4 --channels 8
    one_line "init --out SOCKET" "socket"
    [ -S "$d/sock" ] || fail "init --out SOCKET: the socket was replaced"
fi
(cd "$d/dir" && "$G" init --out - --vocab 50 --ctx 4 --channels 8 >/dev/null 2>"$d/err")
[ $? -eq 2 ] || fail "init --out -: not refused"
one_line "init --out -" "standard output"
[ -e "$d/dir/-" ] && fail "init --out -: wrote a file named '-'"

# ---- step: in place is allowed (mode kept), other inputs refused, metadata kept
"$G" embed --weights "$M" -o "$d/dout.npy" "$d/ids.txt" || fail "dout"   # [3, 48] float32
cp "$d/dout.npy" "$d/dout.npy.orig"
step() { "$G" step --ids "$d/ids.txt" --dout "$d/dout.npy" --lr 0.1 "$@"; }
expect 2 "step --out IDS" step --weights "$W" --optimizer sgd --out "$d/ids.txt"
one_line "step --out IDS" "same file"; intact "$d/ids.txt" "step --out IDS"
expect 2 "step --out DOUT" step --weights "$W" --optimizer sgd --out "$d/dout.npy"
intact "$d/dout.npy" "step --out DOUT"
expect 2 "step --state WEIGHTS" step --weights "$W" --optimizer adam --state "$W" --out "$d/n.safetensors"
intact "$W" "step --state WEIGHTS"
[ -e "$d/n.safetensors" ] && fail "step --state WEIGHTS: the weights were written anyway"
expect 2 "step --state OUT" step --weights "$W" --optimizer adam --state "$d/s" --out "$d/s"
expect 2 "step --state OUT (two spellings)" step --weights "$W" --optimizer adam --state "$d/s" --out "$d/./s"
one_line "step --state OUT (two spellings)" "also an input"
[ -e "$d/s" ] && fail "step --state S --out ./S: wrote S"
ln -s s "$d/slink"   # dangling: both names would create $d/s
expect 2 "step --state LINK-TO-OUT" step --weights "$W" --optimizer adam --state "$d/slink" --out "$d/s"
one_line "step --state LINK-TO-OUT" "also an input"
expect 2 "step --state OUT --out LINK-TO-OUT" step --weights "$W" --optimizer adam --state "$d/s" --out "$d/slink"
[ -e "$d/s" ] && fail "step --state LINK --out S (LINK -> S): wrote S"
rm -f "$d/slink"
expect 2 "step --out DIR" step --weights "$W" --optimizer sgd --out "$d/dir"
one_line "step --out DIR" "is a directory"
cp "$W" "$d/inplace.safetensors"; chmod 640 "$d/inplace.safetensors"
ln "$d/inplace.safetensors" "$d/inplace.hardlink"
if [ "$(id -u)" = 0 ] && chown 65534:65534 "$d/inplace.safetensors" 2>/dev/null; then owner=65534:65534
else owner=$(stat -c %u:%g "$d/inplace.safetensors"); fi
expect 0 "step in place" step --weights "$d/inplace.safetensors" --optimizer sgd --out "$d/inplace.safetensors"
cmp -s "$d/inplace.safetensors" "$W" && fail "step in place: nothing was stepped"
[ "$(stat -c %a "$d/inplace.safetensors")" = 640 ] || fail "step in place: mode not kept"
[ "$(stat -c %u:%g "$d/inplace.safetensors")" = "$owner" ] || fail "step in place: owner $(stat -c %u:%g "$d/inplace.safetensors"), was $owner"
# documented in --help: the hard link's other name keeps the old file
cmp -s "$d/inplace.hardlink" "$W" || fail "step in place: the hard link's other name changed"
step --help | grep -q "hard links" || fail "step --help does not say what happens to hard links"
ln -s inplace.safetensors "$d/inplace.link"
expect 0 "step in place via a symlink" step --weights "$d/inplace.link" --optimizer sgd --out "$d/inplace.link"
[ -L "$d/inplace.link" ] || fail "step --out symlink: the link was replaced by a file"
# an empty "__metadata__": {} is written back
h='{"__metadata__":{},"wte.weight":{"dtype":"F32","shape":[4,2],"data_offsets":[0,32]}}'
while [ $(( ${#h} % 8 )) -ne 0 ]; do h="$h "; done
{ printf "\\$(printf %03o ${#h})\\000\\000\\000\\000\\000\\000\\000"; printf %s "$h"; head -c 32 /dev/zero; } >"$d/meta.safetensors"
printf '1\n' >"$d/one.txt"
"$G" embed --weights "$d/meta.safetensors" -o "$d/dout1.npy" "$d/one.txt" || fail "embed 4x2"
expect 0 "step, empty metadata" "$G" step --weights "$d/meta.safetensors" --ids "$d/one.txt" \
    --dout "$d/dout1.npy" --optimizer sgd --lr 1 --out "$d/meta2.safetensors"
grep -qF '"__metadata__":{}' "$d/meta2.safetensors" || fail "step dropped the empty __metadata__"
no_temp "step"

# ---- plot and train-skipgram (the GPT-2 vocabulary: 50257 rows) --------------
"$G" init --out "$d/gw.safetensors" --vocab 50257 --ctx 4 --channels 8 --seed 3 || fail "init gw"
cp "$d/gw.safetensors" "$d/gw.safetensors.orig"
expect 2 "plot --out WEIGHTS" "$G" plot --weights "$d/gw.safetensors" --out "$d/gw.safetensors" cat dog car
one_line "plot --out WEIGHTS" "same file"; intact "$d/gw.safetensors" "plot --out WEIGHTS"
expect 2 "plot --out DIR" "$G" plot --weights "$d/gw.safetensors" --out "$d/dir" cat dog car
one_line "plot --out DIR" "is a directory"
fifo_run "plot --out FIFO" "$G" plot --weights "$d/gw.safetensors" --out "$d/fifo" cat dog car
grep -q '</svg>' "$d/got" || fail "plot --out FIFO: no SVG came through"
printf 'the cat sat on the mat with the dog\n' >"$d/corpus.txt"
cp "$d/corpus.txt" "$d/corpus.txt.orig"
sg() { "$G" train-skipgram --weights "$d/gw.safetensors" --corpus "$d/corpus.txt" --epochs 1 --pairs cat:dog "$@"; }
expect 2 "train-skipgram --out WEIGHTS" sg --out "$d/gw.safetensors"
one_line "train-skipgram --out WEIGHTS" "same file"; intact "$d/gw.safetensors" "train-skipgram --out WEIGHTS"
expect 2 "train-skipgram --out CORPUS" sg --out "$d/corpus.txt"
intact "$d/corpus.txt" "train-skipgram --out CORPUS"
expect 2 "train-skipgram --out DIR" sg --out "$d/dir"
one_line "train-skipgram --out DIR" "is a directory"
fifo_run "train-skipgram --out FIFO" sg --out "$d/fifo"
"$G" inspect "$d/got" >/dev/null 2>&1 || fail "train-skipgram --out FIFO: not a valid file came through"
no_temp "plot and train-skipgram"

# ---- killed while writing: nothing partial under the final name ----------------
# The ids come through a FIFO held open, so embed has written several MB and
# is waiting for more when it is killed.
cp "$d/want.npy" "$d/big.npy" && cp "$d/big.npy" "$d/big.npy.orig"
mkfifo "$d/in"
"$G" embed --weights "$M" -o "$d/big.npy" <"$d/in" 2>/dev/null &
kill_pid=$!
exec 3>"$d/in"
awk 'BEGIN { for (i = 0; i < 20000; i++) print i % 300 }' >&3
n=0 size=0
while [ $n -lt 500 ]; do   # until 2 MB have reached the disk (or the final name)
    tmpf=$(ls -A "$d" | grep '^\.big\.npy\.tmp\.' | head -n 1)
    size=$(stat -c %s "$d/${tmpf:-big.npy}" 2>/dev/null || echo 0)
    [ "$size" -gt 2000000 ] && break
    sleep 0.02
    n=$((n + 1))
done
kill -9 $kill_pid 2>/dev/null
wait $kill_pid 2>/dev/null
kill_pid=
exec 3>&-
[ "$size" -gt 2000000 ] || fail "killed embed: never saw 2 MB written"
intact "$d/big.npy" "embed killed while writing"
[ -n "$tmpf" ] && rm -f "$d/$tmpf"   # the documented leftover of a killed run

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "output safety: ok"
