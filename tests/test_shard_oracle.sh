#!/bin/sh
# gpt2in shard's tokens against npm tiktoken's encode_ordinary, as llm.c's
# fineweb.py makes them: a seeded corpus (Debian license texts and random
# strings in several scripts, <|endoftext|> inside documents, an empty
# document, JSON escapes) as JSON Lines, plain lines, whole files and gzip;
# tests/oracle/shard_check.js reads the inputs itself and compares the
# shards' concatenated tokens (and the document count) with its own.
. tests/shard_setup.sh
[ -x /usr/bin/python3 ] || { echo "skipped: no /usr/bin/python3"; exit 77; }
sh tests/oracle/install.sh || exit $?
/usr/bin/python3 tests/gen_shard_corpus.py "$d" || exit 2
gzip -9 -k -c "$d/docs.jsonl" > "$d/docsz.jsonl.gz"

# JSON Lines and one document a line, shards of 1000 tokens (documents cut
# across shards), a validation shard of 1500.
"$GPT2IN" shard --quiet --out "$d/o1" --split-lines --shard-tokens 1000 --val-tokens 1500 \
    "$d/docs.jsonl" "$d/lines.txt" "$d/docsz.jsonl.gz" || bad "shard jsonl + lines: exit $?"
node tests/oracle/shard_check.js "$d/o1" corpus "jsonl:$d/docs.jsonl" "lines:$d/lines.txt" \
    "jsonl:$d/docsz.jsonl.gz" || bad "jsonl + lines differ from tiktoken"

# Whole files, one document each; two threads.
"$GPT2IN" shard --quiet --threads 2 --out "$d/o2" --name t --shard-tokens 777 "$d/whole1.txt" \
    "$d/whole2.txt" "$d/many/000.txt" "$d/many/001.txt" || bad "shard whole files: exit $?"
node tests/oracle/shard_check.js "$d/o2" t "text:$d/whole1.txt" "text:$d/whole2.txt" \
    "text:$d/many/000.txt" "text:$d/many/001.txt" || bad "whole files differ from tiktoken"
finish
