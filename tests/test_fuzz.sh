#!/bin/sh
# Builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined,
# in build-fuzz/), replays every saved crash of tests/fuzz/regressions/ and
# fuzzes each target for FUZZ_TEST_SECONDS (default 12), two at a time.
# Runs once per `make test`: in the sanitized pass it skips, since the
# fuzz targets carry ASan and UBSan themselves.
set -u
if [ "${SANITIZED:-0}" = 1 ]; then
    echo "skipped in the sanitized pass: the fuzz targets are sanitized already (run in the normal pass)"
    exit 77
fi
if ! command -v clang >/dev/null 2>&1; then
    echo "clang is not installed (apt-get install clang libclang-rt-14-dev); fuzzing skipped"
    exit 77
fi
if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    echo "libFuzzer runtime not found (apt-get install libclang-rt-14-dev); fuzzing skipped"
    exit 77
fi
make --no-print-directory -s fuzz-bin >/tmp/gpt2in-fuzz-build.$$ 2>&1 || {
    tail -n 30 /tmp/gpt2in-fuzz-build.$$
    rm -f /tmp/gpt2in-fuzz-build.$$
    echo "building the fuzz targets failed"
    exit 1
}
rm -f /tmp/gpt2in-fuzz-build.$$
sh tests/fuzz/run.sh "${FUZZ_TEST_SECONDS:-12}"
