"""Checks gpt2in against the committed tokenizer fixtures (ids from tiktoken,
see tests/oracle/gen_fixtures.js). Run by tests/test_tokenizer_fixtures.sh.

For every tests/fixtures/tokenizer/NAME.txt: encode (file, stdin, --threads 2)
equals NAME.ids; count equals their number; decode gives the exact bytes; each
output format, read back independently here and by `decode --input-format`,
holds the same ids; --offsets spans hold each token's bytes. Token bytes come
from gpt2_weights/encoder.json, read here, not from gpt2in."""
import concurrent.futures
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
GPT2IN = os.path.abspath(os.environ.get("GPT2IN", os.path.join(ROOT, "build", "gpt2in")))
SANITIZED = os.environ.get("SANITIZED", "0") == "1"


def load_vocab():
    # GPT-2's byte <-> unicode table: printable bytes map to themselves, the
    # other 68 to U+0100.. in byte order.
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cps, n = {}, 0
    for b in range(256):
        if b in keep:
            cps[chr(b)] = b
        else:
            cps[chr(0x100 + n)] = b
            n += 1
    with open(os.path.join(ROOT, "gpt2_weights", "encoder.json"), encoding="utf-8") as f:
        enc = json.load(f)
    vocab = {}
    for s, i in enc.items():
        vocab[i] = s.encode() if s == "<|endoftext|>" else bytes(cps[c] for c in s)
    return vocab


VOCAB = load_vocab()


def run(args, stdin=None):
    p = subprocess.run([GPT2IN] + args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace").strip()


def show(ids, i):
    lo, hi = max(0, i - 3), i + 4
    return " ".join("%d%s" % (t, json.dumps(VOCAB.get(t, b"?").decode("utf-8", "backslashreplace"), ensure_ascii=False)) for t in ids[lo:hi])


def compare(what, got, want):
    if got == want:
        return None
    i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
    return ("%s: %d ids, expected %d; first difference at token %d:\n      got      %s\n      expected %s"
            % (what, len(got), len(want), i, show(got, i), show(want, i)))


def parse_text_ids(out):
    return [int(x) for x in out.split()]


def parse_format(fmt, data):
    """Reads an encode --format output independently of gpt2in."""
    if fmt == "u16":
        return list(struct.unpack("<%dH" % (len(data) // 2), data)) if len(data) % 2 == 0 else None
    if fmt == "u32":
        return list(struct.unpack("<%dI" % (len(data) // 4), data)) if len(data) % 4 == 0 else None
    if fmt == "json":
        return json.loads(data)
    if fmt == "llmc":
        head = struct.unpack("<256i", data[:1024])
        if head[0] != 20240520 or head[1] != 1 or len(data) != 1024 + 2 * head[2]:
            return None
        return list(struct.unpack("<%dH" % head[2], data[1024:]))
    if fmt == "npy":
        import io
        import numpy
        a = numpy.load(io.BytesIO(data))
        if a.ndim != 1 or a.dtype.kind not in "iu":
            return None
        return [int(x) for x in a]
    raise ValueError(fmt)


def parse_offsets(out):
    """encode --offsets in text format: one token per line, `ID START END`
    (byte offsets in the input; `ID START` is also understood)."""
    rows = []
    for line in out.decode().splitlines():
        f = line.split()
        if not f:
            continue
        rows.append([int(x) for x in f])
    return rows


def check_offsets(rows, ids, data):
    if [r[0] for r in rows] != ids:
        return compare("--offsets ids", [r[0] for r in rows], ids)
    pos = 0
    for k, r in enumerate(rows):
        if len(r) not in (2, 3):
            return "--offsets line %d: expected 'ID START [END]', got %r" % (k + 1, r)
        start = r[1]
        end = r[2] if len(r) == 3 else (rows[k + 1][1] if k + 1 < len(rows) else len(data))
        if start != pos:
            return "--offsets token %d (id %d) starts at %d, expected %d (spans must tile the input)" % (k, r[0], start, pos)
        if data[start:end] != VOCAB[r[0]]:
            return "--offsets token %d (id %d): input[%d:%d] = %r, token bytes %r" % (
                k, r[0], start, end, data[start:end], VOCAB[r[0]])
        pos = end
    if pos != len(data):
        return "--offsets spans end at %d, input has %d bytes" % (pos, len(data))
    return None


def check_fixture(name, full, tmp):
    path = os.path.join(FIX, name + ".txt")
    with open(path, "rb") as f:
        data = f.read()
    with open(os.path.join(FIX, name + ".ids")) as f:
        want = [int(x) for x in f.read().split()]
    flags = (["--special", "allow"] if name.startswith("special_allow_")
             else ["--special", "text"] if name.startswith("special_text_") else [])
    errs = []

    def expect_ids(what, args, stdin=None):
        rc, out, err = run(args, stdin)
        if rc != 0:
            errs.append("%s: exit %d: %s" % (what, rc, err))
            return
        e = compare(what, parse_text_ids(out), want)
        if e:
            errs.append(e)

    expect_ids("encode FILE", ["encode"] + flags + [path])
    expect_ids("encode <stdin", ["encode"] + flags, data)
    if full:
        expect_ids("encode --threads 2", ["encode", "--threads", "2"] + flags + [path])
    rc, out, err = run(["count"] + flags + [path])
    if rc != 0 or out.split() != [str(len(want)).encode()]:
        errs.append("count: exit %d, printed %r, expected %d (%s)" % (rc, out[:80], len(want), err))
    text_ids = ("\n".join(map(str, want)) + "\n").encode()
    rc, out, err = run(["decode"], text_ids)
    if rc != 0 or out != data:
        errs.append("decode: exit %d, %d bytes, expected %d, first difference at byte %s (%s)" % (
            rc, len(out), len(data), next((i for i in range(min(len(out), len(data))) if out[i] != data[i]),
                                          min(len(out), len(data))), err))
    if not full:
        return errs
    for fmt in ("u16", "u32", "npy", "json", "llmc"):
        out_path = os.path.join(tmp, "%s.%s" % (name, fmt))
        rc, out, err = run(["encode", "--format", fmt] + flags + [path])
        if rc != 0:
            errs.append("encode --format %s: exit %d: %s" % (fmt, rc, err))
            continue
        with open(out_path, "wb") as f:
            f.write(out)
        try:
            got = parse_format(fmt, out)
        except Exception as ex:  # malformed output
            got, err = None, str(ex)
        if got is None:
            errs.append("encode --format %s: output does not parse as %s (%s)" % (fmt, fmt, err))
        else:
            e = compare("encode --format %s" % fmt, got, want)
            if e:
                errs.append(e)
        rc, back, err = run(["decode", "--input-format", fmt, out_path])
        if rc != 0 or back != data:
            errs.append("decode --input-format %s: exit %d, %d bytes, expected the %d input bytes (%s)" % (
                fmt, rc, len(back), len(data), err))
    rc, out, err = run(["encode", "--offsets"] + flags + [path])
    if rc != 0:
        errs.append("encode --offsets: exit %d: %s" % (rc, err))
    else:
        e = check_offsets(parse_offsets(out), want, data)
        if e:
            errs.append(e)
    # The JSON form: [[ID, START, END], ...].
    rc, out, err = run(["encode", "--offsets", "--format", "json"] + flags + [path])
    try:
        rows = json.loads(out) if rc == 0 else None
    except ValueError as ex:
        rows, err = None, "not JSON: %s" % ex
    if rows is None:
        errs.append("encode --offsets --format json: exit %d: %s" % (rc, err))
    else:
        e = check_offsets(rows, want, data)
        if e:
            errs.append("--format json: " + e)
    return errs


def main():
    names = sorted(f[:-4] for f in os.listdir(FIX) if f.endswith(".txt"))
    if len(sys.argv) > 1:  # optional name filter, for debugging
        names = [n for n in names if sys.argv[1] in n]
    if not names:
        print("no fixtures in", FIX)
        return 1
    # Under the sanitizers each process is slow: every fixture still goes
    # through encode/count/decode, the format and offset checks through a third.
    full = {n: (not SANITIZED or i % 3 == 0) for i, n in enumerate(names)}
    failed = 0
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = pool.map(lambda n: (n, check_fixture(n, full[n], tmp)), names)
        for name, errs in results:
            if errs:
                failed += 1
                print("FAIL %s" % name)
                for e in errs:
                    print("   ", e)
        # All fixtures in one input, twice over (about 1.2 MB, so that the
        # threaded path runs), joined by byte 0xFF: by gpt2in's rule for
        # invalid UTF-8 that byte is a piece of its own (token 187) and each
        # fixture encodes as it does alone.
        joined, want = [], []
        for name in [n for n in names if not n.startswith("special_")] * 2:
            with open(os.path.join(FIX, name + ".txt"), "rb") as f:
                joined.append(f.read())
            with open(os.path.join(FIX, name + ".ids")) as f:
                want += [int(x) for x in f.read().split()] + [187]
        want.pop()
        path = os.path.join(tmp, "joined.txt")
        with open(path, "wb") as f:
            f.write(b"\xff".join(joined))
        for args, stdin in ((["--threads", "1", path], None), (["--threads", "2", path], None),
                            (["--threads", "8", path], None), (["--threads", "2"], b"\xff".join(joined))):
            if SANITIZED and args[1] == "8":
                continue
            rc, out, err = run(["encode"] + args, stdin)
            e = ("exit %d: %s" % (rc, err)) if rc else compare("joined fixtures", parse_text_ids(out), want)
            if e:
                failed += 1
                print("FAIL all fixtures joined by 0xFF (%d bytes), encode %s%s:\n    %s" % (
                    sum(map(len, joined)) + len(joined) - 1, " ".join(args[:2]), " <stdin" if stdin else "", e))
    print("%d fixtures, %d failed (gpt2in = %s)" % (len(names), failed, GPT2IN))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
