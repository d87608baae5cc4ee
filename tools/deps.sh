#!/bin/sh
# deps.sh check|install - the Debian packages gpt2in needs.
#   build:   libutf8proc-dev libjansson-dev (JSON vocabularies)
#            zlib1g-dev libzstd-dev (gpt2in shard reads compressed corpora)
#   tests:   pkg-config (the installed library's test)
#            python3-dev python3-setuptools python3-pytest python3-hypothesis (tools/python)
#            python3-numpy python3-torch (references), python3-distributed (shard on Dask), clang libclang-rt-14-dev
#            (libFuzzer, sanitizers), nodejs npm (tiktoken oracle), valgrind,
#            hyperfine (make bench's start-up figure)
#   bench:   python3.11-doc perl-doc manpages-{de,fr,es,pl,ru,ja,zh}: real
#            text for make bench's corpora (tests/bench/make_corpora.py)
# `check` only reports what the build needs; `install` installs whatever is
# missing; `install-build` only what the build (and `make demo`) needs.
set -u
mode=${1:-check}

missing_build() {
    m=""
    [ -f /usr/include/utf8proc.h ] || m="$m libutf8proc-dev"
    [ -f /usr/include/jansson.h ] || m="$m libjansson-dev"
    [ -f /usr/include/zlib.h ] || m="$m zlib1g-dev"
    [ -f /usr/include/zstd.h ] || m="$m libzstd-dev"
    [ -f /usr/include/simdjson.h ] || m="$m libsimdjson-dev"   # JSON Lines (gpt2in shard)
    command -v g++ >/dev/null 2>&1 || m="$m g++"
    echo "$m"
}

missing_test() {
    m=""
    command -v pkg-config >/dev/null 2>&1 || m="$m pkg-config"
    if [ -x /usr/bin/python3 ]; then
        /usr/bin/python3 -c 'import numpy' 2>/dev/null || m="$m python3-numpy"
        /usr/bin/python3 -c 'import torch' 2>/dev/null || m="$m python3-torch"
        for p in pytest hypothesis setuptools; do   # tools/python's tests
            /usr/bin/python3 -c "import $p" 2>/dev/null || m="$m python3-$p"; done
        /usr/bin/python3 -c 'import distributed' 2>/dev/null || m="$m python3-distributed"   # gpt2in shard on Dask
        ls /usr/include/python3.*/Python.h >/dev/null 2>&1 || m="$m python3-dev"
    else
        m="$m python3 python3-numpy python3-torch"
    fi
    command -v clang >/dev/null 2>&1 || m="$m clang"
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 \
        || m="$m libclang-rt-14-dev"
    command -v node >/dev/null 2>&1 || m="$m nodejs"
    command -v npm >/dev/null 2>&1 || m="$m npm"
    command -v valgrind >/dev/null 2>&1 || m="$m valgrind"
    command -v hyperfine >/dev/null 2>&1 || m="$m hyperfine"
    command -v zstd >/dev/null 2>&1 || m="$m zstd"   # shard's .zst inputs
    echo "$m"
}

missing_bench() {
    m=""
    [ -d /usr/share/doc/python3.11/html/_sources ] || m="$m python3.11-doc"
    ls /usr/share/perl/5.*/pod/perlfunc.pod >/dev/null 2>&1 || m="$m perl-doc"
    # The package itself: /usr/share/man/es and the like also hold other
    # packages' translated pages, a fraction of the corpus's 2 MB a language.
    for l in de fr es pl ru ja zh; do
        dpkg-query -W -f '${Status}' manpages-$l 2>/dev/null | grep -q 'ok installed' ||
            m="$m manpages-$l"
    done
    echo "$m"
}

case "$mode" in
check)
    m=$(missing_build)
    if [ -n "$m" ]; then
        echo "gpt2in: missing build dependencies:$m" >&2
        echo "gpt2in: run 'make deps' (or: sudo apt-get install$m)" >&2
        exit 1
    fi
    ;;
install|install-build|install-bench)
    m="$(missing_build)"
    [ "$mode" = install ] && m="$m$(missing_test)"
    [ "$mode" = install-bench ] && m="$m$(missing_test)$(missing_bench)"
    [ -z "$m" ] && exit 0
    echo "gpt2in: installing:$m" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""
    elif command -v sudo >/dev/null 2>&1; then sudo="sudo"
    else
        echo "gpt2in: not root and no sudo; run as root: apt-get install$m" >&2
        exit 1
    fi
    $sudo apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $m >&2 ||
        { echo "gpt2in: apt-get install$m failed" >&2; exit 1; }
    ;;
*)
    echo "usage: deps.sh check|install|install-build|install-bench" >&2
    exit 2
    ;;
esac
