#!/bin/sh
# The committed tokenizer fixtures (tests/fixtures/tokenizer, ids from npm
# tiktoken via tests/oracle/gen_fixtures.js) through every path of the CLI:
# encode (file, stdin, --threads 2, each --format, --offsets), count, decode.
# Needs no Node: the expected ids are committed. Checker: tests/oracle/fixtures_check.py.
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "skipped: /usr/bin/python3 is missing"; exit 77; }
GPT2IN=$GPT2IN exec /usr/bin/python3 tests/oracle/fixtures_check.py
