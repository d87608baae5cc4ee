#!/bin/sh
# gpt2in's start-up: the program loads no shared library but libc and libm.
# utf8proc and jansson are linked from their archives: a shared library is
# opened, mapped and relocated at every start, before a byte is read. (Their
# code paths, tokenizer.json and quoted names, are the other suites'.)
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
command -v readelf > /dev/null 2>&1 || { echo "skipped: no readelf (binutils)"; exit 77; }
fails=0
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }

needed=$(readelf -d "$GPT2IN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
case " $needed" in *" libc.so."*) ;; *) fail "no libc among gpt2in's NEEDED ($needed): the check looks at the wrong names" ;; esac
for lib in $needed; do
    case "$lib" in
    libc.so.* | libm.so.* | ld-linux*) ;;
    libasan.so.* | libubsan.so.*) ;;  # the sanitizer build's runtimes
    *) fail "gpt2in loads $lib at every start (NEEDED: $needed)" ;;
    esac
done
out=$(printf 'Hello world' | "$GPT2IN" encode) || fail "encode failed"
[ "$out" = "15496 995" ] || fail "encode gave '$out', not '15496 995'"
[ $fails -eq 0 ] && echo "ok: gpt2in NEEDED: $needed"
exit $((fails > 0))
