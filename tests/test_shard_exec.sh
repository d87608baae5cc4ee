#!/bin/sh
# gpt2in shard is a program of its own, gpt2in-shard (only it links zlib,
# zstd (from their static archives), simdjson and the C++ runtime, so that
# every other command starts without loading them; it links no libcrypto at all: its sha256 is its own
# and loads libcrypto only on a CPU without SHA extensions), run by `gpt2in shard` from beside
# gpt2in (the build folder) or from ../libexec/gpt2in/ (an installed prefix,
# copied or moved anywhere; tests/test_install.sh checks `make install`).
# Checked: gpt2in's NEEDED libraries; `gpt2in shard` through both places,
# through a symbolic link and from PATH, with the same shards as
# gpt2in-shard run directly and the same exit status; a clear error when
# gpt2in-shard is missing, while the other commands still work.
. tests/shard_setup.sh
SHARD=$(dirname "$GPT2IN")/gpt2in-shard
command -v readelf > /dev/null 2>&1 || { echo "skipped: no readelf (binutils)"; exit 77; }

[ -x "$SHARD" ] || { echo "FAIL: $SHARD is not built beside $GPT2IN"; exit 1; }
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
n=$(needed "$GPT2IN")
for lib in libcrypto libssl libsimdjson libstdc++ libzstd libz.; do
    case " $n" in *" $lib"*) bad "gpt2in links $lib (NEEDED: $n); only gpt2in-shard should" ;; esac
done
# zstd's and zlib's code is in gpt2in-shard, from their static archives (as
# utf8proc's and jansson's: a shared library costs its loading at every
# start), and not in gpt2in.
defines() { readelf -sW "$1" | awk -v s="$2" '$8 == s && $7 != "UND" { f = 1 } END { exit !f }'; }
for sym in ZSTD_decompressStream inflate; do
    defines "$SHARD" $sym || bad "gpt2in-shard does not hold $sym"
    defines "$GPT2IN" $sym && bad "gpt2in holds $sym; only gpt2in-shard should"
done
n=$(needed "$SHARD")
for lib in libzstd libz. libutf8proc libjansson; do
    case " $n" in *" $lib"*) bad "gpt2in-shard loads $lib at start (NEEDED: $n); it links its static archive" ;; esac
done
case " $n" in *" libcrypto"*) bad "gpt2in-shard links libcrypto (NEEDED: $n): its start-up costs more than a small input" ;; esac
# simdjson and the C++ runtime: only in gpt2in-shard-json.so, loaded for JSON Lines
for lib in libsimdjson libstdc++; do
    case " $n" in *" $lib"*) bad "gpt2in-shard links $lib (NEEDED: $n); only gpt2in-shard-json.so should" ;; esac
done
JSONLIB=$(dirname "$GPT2IN")/gpt2in-shard-json.so
[ -f "$JSONLIB" ] || bad "$JSONLIB is not built beside gpt2in-shard"
case " $(needed "$JSONLIB")" in *" libsimdjson"*) ;; *) bad "gpt2in-shard-json.so does not link libsimdjson" ;; esac

"$GPT2IN" --help | grep -q '^  shard ' || bad "gpt2in --help does not list shard"
"$GPT2IN" shard --help > "$d/help" 2>&1 && grep -q '^usage: gpt2in shard' "$d/help" ||
    bad "gpt2in shard --help: $(head -n 3 "$d/help")"

printf 'one document, a few words.\n' > "$d/a.txt"
printf '{"text": "a second document"}\n{"text": "and a third"}\n' > "$d/b.jsonl"
shard() { # NAME PROGRAM...: shards a.txt and b.jsonl into $d/NAME
    out=$d/$1; shift
    "$@" --quiet --out "$out" --shard-tokens 8 "$d/a.txt" "$d/b.jsonl" > "$d/log" 2>&1 ||
        { bad "$* failed: $(cat "$d/log")"; return; }
    ls "$out" > /dev/null 2>&1 || bad "$*: no output in $out"
}
same() { # NAME: the same files and bytes as the direct run
    (cd "$d/direct" && find . -type f | sort | xargs cat) > "$d/want"
    (cd "$d/$1" 2> /dev/null && find . -type f | sort | xargs cat) > "$d/got"
    cmp -s "$d/want" "$d/got" || bad "$1: the shards differ from gpt2in-shard's"
}
shard direct "$SHARD"
[ -n "$(ls "$d/direct" 2>/dev/null)" ] || bad "gpt2in-shard wrote nothing"
shard build "$GPT2IN" shard
same build

# An installed layout, moved: PREFIX/bin/gpt2in, PREFIX/libexec/gpt2in/gpt2in-shard.
mkdir -p "$d/p/bin" "$d/p/libexec/gpt2in" "$d/alone" "$d/links"
cp "$GPT2IN" "$d/p/bin/gpt2in"
cp "$SHARD" "$d/p/libexec/gpt2in/gpt2in-shard"
cp "$JSONLIB" "$d/p/libexec/gpt2in/gpt2in-shard-json.so"
shard prefix "$d/p/bin/gpt2in" shard
same prefix
grep -q warning "$d/log" && bad "prefix: $(cat "$d/log")"
ln -s "$d/p/bin/gpt2in" "$d/links/gpt2in"   # the link's target decides
shard link "$d/links/gpt2in" shard
same link
shard path env PATH="$d/links:$PATH" gpt2in shard
same path

# Text inputs never load simdjson or the C++ runtime; JSON Lines do (the
# dynamic loader's own account, LD_DEBUG=files).
libs() { # INPUT: the libraries loaded by gpt2in shard over INPUT
    rm -rf "$d/ld"
    LD_DEBUG=files "$GPT2IN" shard --quiet --out "$d/ld" "$1" 2>&1 >/dev/null | sed -n 's/.*file=\([^ ]*\).*/\1/p' | sort -u | tr '\n' ' '
}
case " $(libs "$d/a.txt")" in *simdjson*) bad "a text input loads simdjson: $(libs "$d/a.txt")" ;; esac
if [ "${SANITIZED:-0}" != 1 ]; then   # (the sanitizers' runtime needs libstdc++)
    case " $(libs "$d/a.txt")" in *"libstdc++"*) bad "a text input loads libstdc++: $(libs "$d/a.txt")" ;; esac
fi
case " $(libs "$d/b.jsonl")" in *simdjson*) ;; *) bad "a JSON Lines input does not load simdjson: $(libs "$d/b.jsonl")" ;; esac

# Without gpt2in-shard-json.so: the same shards (jansson parses every line),
# and a warning.
mkdir -p "$d/np/libexec/gpt2in" "$d/np/bin"
cp "$GPT2IN" "$d/np/bin/gpt2in"
cp "$SHARD" "$d/np/libexec/gpt2in/gpt2in-shard"
shard nolib "$d/np/bin/gpt2in" shard
same nolib
grep -q 'warning: JSON Lines are parsed by jansson alone' "$d/log" || bad "no gpt2in-shard-json.so: no warning ($(cat "$d/log"))"

# The exit status passes through (gpt2in shard runs in gpt2in's place).
"$GPT2IN" shard --no-such-option > "$d/log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q 'no-such-option' "$d/log" || bad "gpt2in shard --no-such-option: exit $rc, $(cat "$d/log")"

# gpt2in alone: shard says where it looked; the rest works without it.
cp "$GPT2IN" "$d/alone/gpt2in"
"$d/alone/gpt2in" shard --help > "$d/log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q 'gpt2in-shard' "$d/log" && grep -q 'libexec/gpt2in' "$d/log" ||
    bad "gpt2in shard without gpt2in-shard: exit $rc, $(cat "$d/log")"
got=$(printf 'hello world' | "$d/alone/gpt2in" encode)
[ "$got" = "31373 995" ] || bad "gpt2in encode without gpt2in-shard: '$got'"

finish "shard exec: gpt2in links none of shard's libraries; gpt2in shard works from the build folder, a moved prefix, a link and PATH"
