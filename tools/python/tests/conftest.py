"""Shared fixtures: the encoding, the committed tokenizer fixtures and the
npm tiktoken oracle (one Node process per batch; GPT2IN_ORACLE names
oracle_batch.js when tests/test_python.sh found Node and tiktoken)."""
import base64
import json
import os
import pathlib
import subprocess

import pytest

import gpt2in

ROOT = pathlib.Path(os.environ.get("GPT2IN_ROOT", pathlib.Path(__file__).resolve().parents[3]))
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizer"


@pytest.fixture(scope="session")
def enc():
    return gpt2in.get_encoding("gpt2")


def load_fixtures():
    out = []
    for txt in sorted(FIXTURES.glob("*.txt")):
        ids = [int(x) for x in txt.with_suffix(".ids").read_text().split()]
        out.append((txt.stem, txt.read_bytes(), ids))
    return out


@pytest.fixture(scope="session")
def fixtures():
    f = load_fixtures()
    assert len(f) > 50, "tokenizer fixtures not found"
    return f


def oracle(items):
    """items: [(bytes, special)] with special "text", "allow" or "error" ->
    per item the ids npm tiktoken gives, or "special" where it refuses."""
    script = os.environ.get("GPT2IN_ORACLE")
    if not script:
        pytest.skip("npm tiktoken oracle not available (tests/oracle/install.sh)")
    req = json.dumps([[base64.b64encode(b).decode(), s] for b, s in items])
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}   # no sanitizers in Node
    r = subprocess.run(["node", script], input=req.encode(), capture_output=True, check=True, env=env)
    return json.loads(r.stdout)
