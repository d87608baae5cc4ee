# tests/cli_setup.sh - how the command-line suites of embed, verify and step
# start (sourced, from the repository's root, as tests/run.sh runs them,
# after `set -u` and cli_name=NAME): $G, the program ($GPT2IN, default
# build/gpt2in); $T, a fresh directory gpt2in-NAME.XXXXXX, removed at exit;
#   fail MESSAGE          records a failure ($fails counts them)
#   expect CODE WHAT CMD  runs CMD, stdout to $T/out and stderr to $T/err,
#                         and fails unless it exits CODE
#   has FILE TEXT         fails unless FILE holds TEXT
#   one_line WHAT TEXT    fails unless $T/err is one line holding TEXT
G=${GPT2IN:-build/gpt2in}
T=$(mktemp -d "${TMPDIR:-/tmp}/gpt2in-${cli_name:-cli}.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect() {
    want=$1; what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    [ "$got" -eq "$want" ] || { fail "$what: exit $got, expected $want"; sed 's/^/    /' "$T/err" | head -5; }
}
has() { grep -qF -- "$2" "$1" || { fail "'$2' not in $1:"; head -5 "$1" | sed 's/^/    /'; }; }
one_line() {
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$1: want one line on stderr, got: $(cat "$T/err")"
    grep -qF -- "$2" "$T/err" || fail "$1: '$2' not in: $(cat "$T/err")"
}
