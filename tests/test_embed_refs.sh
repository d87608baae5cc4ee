#!/bin/sh
# The committed fixtures in tests/fixtures/embed/ are what NumPy and PyTorch
# compute: regenerate them (tests/gen_embed_refs.py, fixed seeds) in a
# temporary folder and compare byte for byte. test_embed always runs the
# committed fixtures; only this regeneration needs Python with torch.
set -u
if [ "${SANITIZED:-0}" = 1 ]; then
    echo "skipped: regeneration does not involve gpt2in; it runs in the normal build only"
    exit 77
fi
if ! /usr/bin/python3 -c 'import numpy, torch' 2>/dev/null; then
    echo "skipped: /usr/bin/python3 with numpy and torch is not available"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/gpt2in-embed-refs.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 tests/gen_embed_refs.py "$T" >/dev/null || { echo "gen_embed_refs.py failed"; exit 1; }
status=0
for f in $(cd tests/fixtures/embed && find . -type f | sort); do
    cmp -s "tests/fixtures/embed/$f" "$T/$f" || { echo "differs from a fresh PyTorch/NumPy run: $f"; status=1; }
done
[ "$(cd "$T" && find . -type f | wc -l)" -eq "$(cd tests/fixtures/embed && find . -type f | wc -l)" ] ||
    { echo "the generator writes a different set of files"; status=1; }
[ $status -eq 0 ] && echo "fixtures reproduce"
exit $status
