#!/bin/sh
# The shared library exports exactly the public API: every dynamic symbol of
# $B/libgpt2in.so is a function declared GPT2IN_API in bpe/bpe.h or
# embed/embed.h, and every such function is there. No internal helper and
# nothing of a bundled library (stb_ds's stbds_* once clashed with programs
# using stb_ds themselves) is visible, in the shared or the static library.
set -u
: "${B:=build}"
command -v nm >/dev/null 2>&1 || { echo "skipped: no nm (binutils)"; exit 77; }
so=$B/libgpt2in.so
[ -f "$so" ] || { echo "$so is not built"; exit 2; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail=0
die() { echo "FAIL: $*"; fail=1; }

# A declaration of the headers starts at column 0 with its type; the name
# is the identifier before the first '('.
decls() {
    grep -hE '^(GPT2IN_API )?[A-Za-z][A-Za-z_0-9 ]*[ *](bpe|embed)_[a-z0-9_]+\(' bpe/bpe.h embed/embed.h |
        grep -v '^typedef'
}
decls | grep -v '^GPT2IN_API ' > "$tmp/unmarked"
[ -s "$tmp/unmarked" ] && die "public declarations without GPT2IN_API: $(cat "$tmp/unmarked")"
decls | sed -E 's/\(.*//; s/.*[ *]//' | sort -u > "$tmp/api"
[ "$(wc -l < "$tmp/api")" -ge 40 ] || die "only $(wc -l < "$tmp/api") public functions found in the headers"

nm -D --defined-only "$so" | awk '{print $NF}' | sort -u > "$tmp/exported"
# (symbols some linkers add on their own are not the library's)
grep -vE '^(_init|_fini|_edata|_end|__bss_start)$' "$tmp/exported" > "$tmp/exp"
comm -13 "$tmp/api" "$tmp/exp" > "$tmp/extra"
comm -23 "$tmp/api" "$tmp/exp" > "$tmp/missing"
[ -s "$tmp/extra" ] && die "exported but not public: $(tr '\n' ' ' < "$tmp/extra")"
[ -s "$tmp/missing" ] && die "public but not exported: $(tr '\n' ' ' < "$tmp/missing")"
grep -vE '^(bpe|embed)_' "$tmp/exp" > "$tmp/prefix"
[ -s "$tmp/prefix" ] && die "exported without the bpe_/embed_ prefix: $(tr '\n' ' ' < "$tmp/prefix")"

# The static library: no global symbol of a bundled library that a program
# linking it statically could define too.
nm -g --defined-only "$B/libgpt2in.a" 2>/dev/null | awk 'NF == 3 {print $3}' |
    grep -E '^stbds_' > "$tmp/bundled"
[ -s "$tmp/bundled" ] && die "libgpt2in.a defines stb_ds symbols: $(tr '\n' ' ' < "$tmp/bundled")"

[ $fail -eq 0 ] && echo "exports: $(wc -l < "$tmp/exp") symbols, all public"
exit $fail
