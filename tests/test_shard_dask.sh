#!/bin/sh
# gpt2in shard on a Dask cluster (tools/gpt2in_dask_shard.py): a LocalCluster
# of two worker processes writes the same shards and manifest as the
# one-machine command, also when a worker is killed in the middle of a unit
# and when the driver is killed and rerun (see tests/test_shard_dask.py).
set -u
: "${B:=build}" "${GPT2IN:=$B/gpt2in}"
PY=/usr/bin/python3
[ -x $PY ] || { echo "skipped: /usr/bin/python3 is missing"; exit 77; }
$PY -c 'import distributed' 2>/dev/null ||
    { echo "skipped: python3-distributed is not installed (make deps)"; exit 77; }
[ -x "$GPT2IN" ] || { echo "FAIL: $GPT2IN is not built"; exit 1; }
export PYTHONDONTWRITEBYTECODE=1
exec nice -n 5 $PY tests/test_shard_dask.py "$GPT2IN"
