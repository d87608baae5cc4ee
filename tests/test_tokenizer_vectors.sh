#!/bin/sh
# Tokenizer vectors with their ids written out: tokenizer.md's worked cases,
# tiktoken's public test vectors, invalid UTF-8 in lossy mode, --strict, the
# three <|endoftext|> modes, decode of bad ids and of tokens ending inside a
# UTF-8 character. The literal cases below were printed by
# `node tests/oracle/gen_vectors.js` (npm tiktoken 1.0.22; invalid UTF-8 per
# bpe.h's rule applied to tiktoken's encodings of the valid segments).
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fails=0 n=0
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }
esc() { od -An -c "$1" | tr -s ' \n' ' ' | cut -c1-160; }

# vec INPUT(printf format) IDS: encode and count equal IDS, decode gives INPUT back.
vec() {
    n=$((n + 1))
    printf "$1" > "$tmp/in"
    got=$("$GPT2IN" encode "$tmp/in" 2>"$tmp/err" | tr -s ' \t\r\n' ' ' | sed 's/^ //; s/ $//')
    rc=$?
    [ "$got" = "$2" ] || fail "encode [$(esc "$tmp/in")]: got '$got', expected '$2' $(cat "$tmp/err")"
    c=$("$GPT2IN" count "$tmp/in" 2>&1)
    [ "$c" = "$(echo $2 | wc -w | tr -d ' ')" ] || fail "count [$(esc "$tmp/in")]: got '$c', expected $(echo $2 | wc -w)"
    echo "$2" | "$GPT2IN" decode > "$tmp/back" 2>"$tmp/err" && cmp -s "$tmp/in" "$tmp/back" ||
        fail "decode '$2': got [$(esc "$tmp/back")], expected [$(esc "$tmp/in")] $(cat "$tmp/err")"
}
# tok ID BYTES(printf format): decode of one id gives exactly those bytes.
tok() {
    n=$((n + 1))
    printf "$2" > "$tmp/want"
    echo "$1" | "$GPT2IN" decode > "$tmp/got" 2>"$tmp/err" && cmp -s "$tmp/want" "$tmp/got" ||
        fail "decode $1: got [$(esc "$tmp/got")], expected [$(esc "$tmp/want")] $(cat "$tmp/err")"
}
# expect_err WHAT NUMBER... -- last command exited 2 with one 'gpt2in: ' line naming one of NUMBER
expect_err() {
    rc=$1 what=$2; shift 2
    n=$((n + 1))
    if [ "$rc" -ne 2 ]; then fail "$what: exit $rc, expected 2"; return; fi
    head -n 1 "$tmp/err" | grep -q '^gpt2in: ' || fail "$what: message does not start with 'gpt2in: ': $(cat "$tmp/err")"
    [ "$(wc -l < "$tmp/err")" -le 1 ] || fail "$what: more than one line on stderr: $(cat "$tmp/err")"
    for num in "$@"; do grep -qw -- "$num" "$tmp/err" && return; done
    fail "$what: message does not name the position ($*): $(cat "$tmp/err")"
}

# ---- literal cases (node tests/oracle/gen_vectors.js) ------------------------
# tokenizer.md's worked cases and tiktoken's public test vectors
vec 'Hello   world' '15496 220 220 995'
vec 'foo   ' '21943 220 220 220'
vec 'a\012\012b' '64 198 198 65'
vec '  \012  x' '220 220 198 220 2124'
vec 'DON'\''T don'\''t' '41173 6 51 836 470'
vec 'it'\''s '\''sup' '270 338 705 37330'
vec 'x\342\200\231s' '87 447 247 82'
vec 'can'\''t'\''ve' '5171 470 1053'
vec '123456' '10163 29228'
vec 'l33t c0de' '75 2091 83 269 15 2934'
vec '\302\263\302\262\302\271 \302\275' '126 111 31185 126 117 25208'
vec 'na\314\201ive' '2616 136 223 425'
vec 'a\302\240b' '64 1849 65'
vec 'a\034b' '64 216 65'
vec 'hello world' '31373 995'
vec '0' '15'
vec '00' '405'
vec '000' '830'
vec '0000' '2388'
vec '00000' '20483'
vec '000000' '10535'
vec '0000000' '24598'
vec '00000000' '8269'
vec '000000000' '10535 830'
vec '0000000000000000' '25645'
vec '00000000000000000' '8269 10535 830'
vec '' ''
vec ' ' '220'
vec '\012' '198'
vec '\015\012' '201 198'
vec 'a' '64'
vec '\360\237\230\200' '47249 222'
vec '\360\237\221\250\342\200\215\360\237\221\251\342\200\215\360\237\221\247' '41840 101 447 235 41840 102 447 235 41840 100'
vec '\357\273\277BOM' '171 119 123 33 2662'
vec 'x \314\201' '87 220 136 223'
vec '  '\''ll' '220 705 297'
vec 'A'\''LL '\''Ll' '32 6 3069 705 43 75'
vec '\343\200\200\343\200\200a' '5099 222 5099 222 64'
vec 'a\342\200\250\342\200\250b' '64 447 101 447 101 65'
vec 'a \302\205b' '64 220 126 227 65'
vec '\341\240\216\342\200\213' '157 254 236 9525'
# invalid UTF-8 (lossy): tiktoken on each valid segment + the byte token of each invalid byte
vec '\377' '187'
vec '\200' '222'
vec '\303' '127'
vec '\300\200' '124 222'
vec '\355\240\200' '169 254 222'
vec '\364\220\200\200' '176 238 222 222'
vec '\365' '177'
vec 'a\377b' '64 187 65'
vec 'hello \377 world' '31373 220 187 995'
vec '  \376  x' '220 220 186 220 2124'
vec 'it\200'\''s' '270 222 338'
vec 'caf\351 \351t\351' '66 1878 165 220 165 83 165'
vec '123\303456' '10163 127 29228'
vec '\303\251\251\303\251' '2634 102 2634'
vec '\342\202x' '158 224 87'
vec '\342\202' '158 224'
vec '\360\237\230\200\360\237\230\360\237\230\200' '47249 222 172 253 246 47249 222'
vec '\360\237\230A' '172 253 246 32'
vec 'word\300\257word' '4775 124 107 4775'
vec 'a\012\377\012\012b' '64 198 187 198 198 65'
vec '\357\273\357\273\277\277' '171 119 171 119 123 123'
vec ' \377' '220 187'
vec '\377 ' '187 220'
vec 'x\376\377\376y' '87 186 187 186 88'
# tokens that end inside a UTF-8 character: bytes of single ids
tok 47249 '\360\237\230'
tok 222 '\200'
tok 162 '\346'
tok 120 '\274'
tok 95 '\242'
tok 27764 '\345\255'
tok 245 '\227'
tok 2634 '\303\251'
tok 11976 '\340\244'
tok 101 '\250'
tok 11976 '\340\244'
tok 106 '\256'
tok 11976 '\340\244'
tok 116 '\270'
tok 24231 '\340\245'
tok 235 '\215'
tok 11976 '\340\244'
tok 97 '\244'
tok 24231 '\340\245'
tok 229 '\207'

# ---- <|endoftext|> ------------------------------------------------------------
n=$((n + 1))
printf 'hello <|endoftext|>' > "$tmp/in"
got=$("$GPT2IN" encode --special allow "$tmp/in" | tr -s ' \n' ' ' | sed 's/ $//')
[ "$got" = "31373 220 50256" ] || fail "--special allow: got '$got', expected '31373 220 50256'"
got=$("$GPT2IN" encode --special text "$tmp/in" | tr -s ' \n' ' ' | sed 's/ $//')
[ "$got" = "31373 1279 91 437 1659 5239 91 29" ] || fail "--special text: got '$got', expected '31373 1279 91 437 1659 5239 91 29'"
printf '<|endoftext|>' > "$tmp/in2"
got=$("$GPT2IN" encode --special text "$tmp/in2" | tr -s ' \n' ' ' | sed 's/ $//')
[ "$got" = "27 91 437 1659 5239 91 29" ] || fail "--special text: got '$got', expected '27 91 437 1659 5239 91 29'"
got=$(echo 50256 | "$GPT2IN" decode)
[ "$got" = "<|endoftext|>" ] || fail "decode 50256: got '$got'"
# Default (error): exit 2, the message names the byte offset (38 here).
printf 'abcdefghijklmnopqrstuvwxyz 0123456789 <|endoftext|> tail' > "$tmp/in"
"$GPT2IN" encode "$tmp/in" > "$tmp/out" 2>"$tmp/err"; expect_err $? "encode with <|endoftext|> (default)" 38
"$GPT2IN" encode --special error < "$tmp/in" > "$tmp/out" 2>"$tmp/err"; expect_err $? "encode --special error <stdin" 38
"$GPT2IN" count "$tmp/in" > "$tmp/out" 2>"$tmp/err"; expect_err $? "count with <|endoftext|>" 38
# Split across a 64 KiB boundary in a stream: still found, offset 65530.
awk 'BEGIN { for (i = 0; i < 65530; i++) printf "x"; printf "<|endoftext|>\n" }' > "$tmp/big"
"$GPT2IN" encode < "$tmp/big" > "$tmp/out" 2>"$tmp/err"; expect_err $? "<|endoftext|> at byte 65530 via stdin" 65530

# ---- --strict ------------------------------------------------------------------------
printf 'valid text then \303\251 fine, then bad: \377 more \300' > "$tmp/in"
"$GPT2IN" encode --strict "$tmp/in" > "$tmp/out" 2>"$tmp/err"; expect_err $? "encode --strict, bad byte at 35" 35
"$GPT2IN" encode --strict < "$tmp/in" > "$tmp/out" 2>"$tmp/err"; expect_err $? "encode --strict <stdin, bad byte at 35" 35
printf 'ok \342\202' > "$tmp/in"   # truncated at end of input
"$GPT2IN" encode --strict "$tmp/in" > "$tmp/out" 2>"$tmp/err"; expect_err $? "encode --strict, truncated sequence at 3" 3
printf 'caf\303\251 ok' > "$tmp/in"
n=$((n + 1))
got=$("$GPT2IN" encode --strict "$tmp/in" | tr -s ' \n' ' ' | sed 's/ $//')
[ "$got" = "66 1878 2634 12876" ] || fail "--strict on valid text: got '$got', expected '66 1878 2634 12876'"

# ---- decode of bad ids ---------------------------------------------------------------
# The bad id is the 4th (index 3) and starts at byte 13 (column 14): any may be named.
for bad in 50257 -1 abc 1e3 4294967296 99999999999999999999; do
    printf '31373 995 11 %s 13\n' "$bad" > "$tmp/in"
    "$GPT2IN" decode "$tmp/in" > "$tmp/out" 2>"$tmp/err"; expect_err $? "decode of '$bad'" 3 4 13 14
done
printf '[31373, 995, 50257]' > "$tmp/in"
"$GPT2IN" decode --input-format json "$tmp/in" > "$tmp/out" 2>"$tmp/err"; expect_err $? "decode --input-format json of 50257" 2 3 13 14
printf '\025\304\000\000\021\304\000\000' > "$tmp/in"   # u32 ids 0xc415 = 50197, 0xc411 = 50193
n=$((n + 1))
"$GPT2IN" decode --input-format u32 "$tmp/in" > /dev/null 2>"$tmp/err" || fail "decode u32 of valid ids: $(cat "$tmp/err")"
printf '\025\304\000\000\021\304\001\000' > "$tmp/in"   # second id = 0x1c411 = 115729
"$GPT2IN" decode --input-format u32 "$tmp/in" > "$tmp/out" 2>"$tmp/err"; expect_err $? "decode --input-format u32 of 115729 (2nd id, byte 4)" 1 2 4

# ---- empty input ----------------------------------------------------------------
: > "$tmp/in"
n=$((n + 1))
[ -z "$("$GPT2IN" encode "$tmp/in")" ] || fail "encode of empty input printed ids"
[ "$("$GPT2IN" count "$tmp/in")" = 0 ] || fail "count of empty input is not 0"
[ -z "$(printf '' | "$GPT2IN" decode)" ] || fail "decode of no ids printed bytes"

echo "$n checks, $fails failed"
[ $fails -eq 0 ]
