#!/bin/sh
# make install / uninstall into a staging folder (DESTDIR): headers land in
# include/gpt2in/, a program written `#include <gpt2in/bpe.h>` compiles and
# links through pkg-config against the installed shared and static
# libraries and runs; uninstall then removes exactly the installed files,
# leaving alone unrelated include/bpe.h and include/embed.h of other
# packages; the installed gpt2in runs gpt2in shard (PREFIX/libexec/gpt2in/
# gpt2in-shard) and encodes. Normal build only (a sanitizer build's library needs the
# sanitizer runtime in every program linking it).
set -u
: "${B:=build}" "${SANITIZED:=0}"
if [ "$SANITIZED" = 1 ]; then
    echo "skipped: the installed library is checked in the normal build"
    exit 77
fi
command -v pkg-config >/dev/null 2>&1 || { echo "skipped: no pkg-config"; exit 77; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
fail=0
die() { echo "FAIL: $*"; fail=1; }
# -o all: install what $B holds, never rebuild it with other flags.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -o all B="$B" \
    DESTDIR="$root" PREFIX=/usr/local "$@"; }

mkdir -p "$root/usr/local/include"
echo '/* another package */' > "$root/usr/local/include/embed.h"
echo '/* another package */' > "$root/usr/local/include/bpe.h"
(cd "$root" && find . ! -type d | sort) > "$tmp/before"

mk install > "$tmp/log" 2>&1 || { cat "$tmp/log"; echo "make install failed"; exit 1; }
(cd "$root" && find . ! -type d | sort) > "$tmp/after"
cat > "$tmp/want" <<'LIST'
./usr/local/bin/gpt2in
./usr/local/bin/gpt2in-dask-shard
./usr/local/include/bpe.h
./usr/local/include/embed.h
./usr/local/include/gpt2in/bpe.h
./usr/local/include/gpt2in/embed.h
./usr/local/lib/libgpt2in.a
./usr/local/lib/libgpt2in.so
./usr/local/lib/libgpt2in.so.0
./usr/local/lib/libgpt2in.so.0.1.0
./usr/local/lib/pkgconfig/gpt2in.pc
./usr/local/libexec/gpt2in/gpt2in-shard
./usr/local/libexec/gpt2in/gpt2in-shard-json.so
LIST
sort "$tmp/want" | cmp -s - "$tmp/after" || die "installed files: $(diff "$tmp/want" "$tmp/after" | tr '\n' ' ')"
[ -x "$root/usr/local/bin/gpt2in-dask-shard" ] || die "gpt2in-dask-shard is not executable"
# The installed programs: gpt2in, and gpt2in shard through libexec.
bin=$root/usr/local/bin/gpt2in
got=$(printf 'hello world' | "$bin" encode)
[ "$got" = "31373 995" ] || die "installed gpt2in encode printed '$got'"
printf 'a document\n' > "$tmp/doc.txt"
"$bin" shard --quiet --out "$tmp/shards" "$tmp/doc.txt" > "$tmp/log" 2>&1 &&
    [ -f "$tmp/shards/corpus_manifest.json" ] || die "installed gpt2in shard: $(cat "$tmp/log")"
for h in bpe.h embed.h; do
    grep -q 'another package' "$root/usr/local/include/$h" || die "install changed include/$h"
done

cat > "$tmp/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <gpt2in/bpe.h>
#include <gpt2in/embed.h>
/* A program with stb_ds of its own defines this; the library must not. */
void *stbds_arrgrowf(void *a, size_t elem, size_t add, size_t cap) {
    (void)elem, (void)add, (void)cap;
    return a;
}
int main(void) {
    uint32_t ids[8];
    size_t n = 0;
    bpe_error err;
    if (bpe_encode(bpe_gpt2(), "hello world", 11, 0, ids, NULL, 8, &n, &err)) return 1;
    if (bpe_load_mem(NULL, 0, NULL, NULL, 0, NULL, &err)) return 1;  /* pulls in the loader */
    printf("%zu %u %u %s\n", n, ids[0], ids[1], embed_dtype_name(EMBED_BF16));
    return 0;
}
C
export PKG_CONFIG_PATH="$root/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root"
pc_cflags=$(pkg-config --cflags gpt2in) && pc_libs=$(pkg-config --libs gpt2in) &&
    pc_static=$(pkg-config --static --libs gpt2in) || die "pkg-config gpt2in failed"
want="2 31373 995 BF16"
if cc -std=c11 -Wall -Wextra -Werror $pc_cflags -o "$tmp/prog" "$tmp/prog.c" $pc_libs 2>"$tmp/cc"; then
    got=$(LD_LIBRARY_PATH="$root/usr/local/lib" "$tmp/prog")
    [ "$got" = "$want" ] || die "shared: printed '$got', want '$want'"
else
    die "shared: does not build: $(cat "$tmp/cc")"
fi
# Static: the archive itself, with the private dependencies pkg-config lists.
static_libs=$(echo "$pc_static" | sed 's/-lgpt2in/-l:libgpt2in.a/')
if cc -std=c11 $pc_cflags -o "$tmp/prog_static" "$tmp/prog.c" $static_libs 2>"$tmp/cc"; then
    got=$("$tmp/prog_static")
    [ "$got" = "$want" ] || die "static: printed '$got', want '$want'"
else
    die "static: does not link: $(head -5 "$tmp/cc")"
fi

mk uninstall > "$tmp/log" 2>&1 || { cat "$tmp/log"; die "make uninstall failed"; }
(cd "$root" && find . ! -type d | sort) > "$tmp/left"
cmp -s "$tmp/before" "$tmp/left" || die "uninstall left or removed: $(diff "$tmp/before" "$tmp/left" | tr '\n' ' ')"
[ -d "$root/usr/local/include/gpt2in" ] && die "uninstall left include/gpt2in/"

# A prefix with a space (make install PREFIX='/opt/my tools'): every file
# lands under it, the pkg-config file escapes the space as pkg-config's
# output does ('\ ', for a shell: eval, or a make recipe), a program builds
# against it and the installed gpt2in runs gpt2in shard from there.
sp="$tmp/a b"
unset PKG_CONFIG_SYSROOT_DIR
if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -o all B="$B" \
        PREFIX="$sp" install >"$tmp/log" 2>&1; then
    (cd "$sp" && find . ! -type d | sort) > "$tmp/after_sp"
    sed 's|^\./usr/local/|./|' "$tmp/want" | grep -vE '^\./include/(bpe|embed)\.h$' | sort |
        cmp -s - "$tmp/after_sp" || die "PREFIX with a space: installed files: $(cat "$tmp/after_sp" | tr '\n' ' ')"
    got=$(printf 'hello world' | "$sp/bin/gpt2in" encode)
    [ "$got" = "31373 995" ] || die "PREFIX with a space: installed gpt2in encode printed '$got'"
    "$sp/bin/gpt2in" shard --quiet --out "$tmp/shards_sp" "$tmp/doc.txt" > "$tmp/log" 2>&1 &&
        [ -f "$tmp/shards_sp/corpus_manifest.json" ] || die "PREFIX with a space: gpt2in shard: $(cat "$tmp/log")"
    export PKG_CONFIG_PATH="$sp/lib/pkgconfig"
    [ "$(pkg-config --variable=includedir gpt2in)" = "$(echo "$sp" | sed 's/ /\\ /g')/include" ] ||
        die "PREFIX with a space: includedir is $(pkg-config --variable=includedir gpt2in)"
    if eval "cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags gpt2in) -o \"\$tmp/prog_sp\" \
            \"\$tmp/prog.c\" $(pkg-config --libs gpt2in)" 2>"$tmp/cc"; then
        got=$(LD_LIBRARY_PATH="$sp/lib" "$tmp/prog_sp")
        [ "$got" = "$want" ] || die "PREFIX with a space: printed '$got', want '$want'"
    else
        die "PREFIX with a space: a program does not build: $(head -5 "$tmp/cc")"
    fi
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -o all B="$B" \
        PREFIX="$sp" uninstall >"$tmp/log" 2>&1 || die "PREFIX with a space: make uninstall failed: $(cat "$tmp/log")"
    left=$(cd "$sp" && find . ! -type d)
    [ -z "$left" ] || die "PREFIX with a space: uninstall left $left"
else
    die "make install PREFIX='$sp' failed: $(tail -3 "$tmp/log")"
fi
[ $fail -eq 0 ] && echo "install: $(wc -l < "$tmp/want") files, shared and static links, uninstall clean; a prefix with a space too"
exit $fail
