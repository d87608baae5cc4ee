#!/bin/sh
# download.sh - fetches GPT-2 small's weights (Hugging Face "gpt2",
# model.safetensors, 548,105,171 bytes) into gpt2_weights/model.safetensors.
# The file goes to a temporary name next to the target, its size and sha256
# are checked, and only then is it renamed into place, so an interrupted or
# corrupted download never leaves a half file under the final name.
# Never run by the tests. Usage: sh gpt2_weights/download.sh [TARGET]
set -eu
URL=https://huggingface.co/gpt2/resolve/main/model.safetensors
SIZE=548105171
SHA256=248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707
target=${1:-$(dirname "$0")/model.safetensors}

say() { echo "download.sh: $*" >&2; }

if [ -f "$target" ] && [ "$(wc -c <"$target")" -eq "$SIZE" ] &&
   echo "$SHA256  $target" | sha256sum -c --status 2>/dev/null; then
    say "$target is already there and verified"
    exit 0
fi

tmp=$(mktemp "$(dirname "$target")/.model.safetensors.part.XXXXXX")
trap 'rm -f "$tmp"' EXIT INT TERM
say "fetching $URL ($SIZE bytes)"
if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 -o "$tmp" "$URL"
elif command -v wget >/dev/null 2>&1; then
    wget -O "$tmp" "$URL"
else
    say "needs curl or wget"; exit 2
fi

got=$(wc -c <"$tmp")
if [ "$got" -ne "$SIZE" ]; then
    say "got $got bytes, expected $SIZE (a Git LFS pointer or an error page?)"; exit 1
fi
if ! echo "$SHA256  $tmp" | sha256sum -c --status; then
    say "sha256 mismatch: expected $SHA256"; exit 1
fi
chmod 644 "$tmp"
mv -f "$tmp" "$target"
trap - EXIT INT TERM
say "saved $target (size and sha256 verified)"
