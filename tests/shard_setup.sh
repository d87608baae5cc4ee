# tests/shard_setup.sh - how every tests/test_shard_*.sh starts (sourced,
# from the repository's root, as tests/run.sh runs them): $GPT2IN (default
# $B/gpt2in, B=build) as an absolute path, the suite skipped (exit 77) when
# it is not built; $d, a fresh directory removed at exit; bad MESSAGE
# records a failure, and finish [LINE] ends the suite: LINE (default "ok")
# when nothing failed, and the exit status.
set -u
: "${B:=build}" "${GPT2IN:=$B/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
case $GPT2IN in /*) ;; *) GPT2IN=$(pwd)/$GPT2IN ;; esac
d=$(mktemp -d) || exit 2
trap 'rm -rf "$d"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
finish() {
    [ $fail -eq 0 ] && echo "${1:-ok}"
    exit $fail
}
