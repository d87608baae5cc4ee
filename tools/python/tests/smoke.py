"""The tokenizer on an interpreter without pytest or NumPy (the other
python3 on PATH, tests/test_python.sh): the committed fixtures through every
encode and decode path, and a few of tiktoken's rules. Exit status 0 when
all hold. Usage: python3 smoke.py ROOT"""
import pathlib
import sys

import gpt2in


def main(root: str) -> int:
    enc = gpt2in.get_encoding("gpt2")
    fixtures = sorted((pathlib.Path(root) / "tests" / "fixtures" / "tokenizer").glob("*.txt"))
    assert len(fixtures) > 50, "tokenizer fixtures not found"
    texts, want = [], []
    for txt in fixtures:
        name = txt.stem
        if name.startswith(("special_", "invalid_utf8")):
            continue
        ids = [int(x) for x in txt.with_suffix(".ids").read_text().split()]
        text = txt.read_bytes().decode()
        assert enc.encode_ordinary(text) == ids, name
        assert enc.encode(text, disallowed_special=()) == ids, name
        assert enc._encode_bytes(text.encode()) == ids, name
        assert enc.decode(ids) == text and enc.decode_bytes(ids) == text.encode(), name
        texts.append(text)
        want.append(ids)
    assert enc.encode_ordinary_batch(texts, num_threads=2) == want
    assert enc.decode_batch(want, num_threads=2) == texts
    assert enc.encode("hello world") == [31373, 995]
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]
    try:
        enc.encode("<|endoftext|>")
        raise AssertionError("no ValueError for a disallowed special token")
    except ValueError as e:
        assert "disallowed special token" in str(e)
    try:
        enc.decode([50257])
        raise AssertionError("no KeyError for an id outside the vocabulary")
    except KeyError as e:
        assert e.args == ("Invalid token for decoding: 50257",)
    assert "drop-in for tiktoken" in gpt2in.__doc__
    print(f"smoke: {len(texts)} fixtures, Python {sys.version.split()[0]} ({sys.executable})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
