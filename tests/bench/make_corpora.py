#!/usr/bin/python3
"""make_corpora.py DIR - the tokenizer benchmark's corpora, from real text
that Debian packages ship (tools/deps.sh install-bench installs them):

  english       Python's documentation sources (python3.11-doc, reST) and
                Perl's manual (perl-doc, POD): 20 MB of English prose
  code          Python's standard library (.py) and the C headers in
                /usr/include: 20 MB of source code
  multilingual  translated manual pages (manpages-de, -fr, -es, -pl, -ru,
                -ja, -zh: roff source, eight languages and scripts with
                zh_CN and zh_TW), 2 MB of each
  base64        the multilingual corpus in base64 as one 10 MB line (one
                regex piece after another, none of them a word)

Files are taken in sorted path order, whole (those that are not valid
UTF-8 are left out: tiktoken takes strings), until the corpus reaches its
size, so the corpora are the same on every machine with the same packages.
Nothing is repeated. DIR/MANIFEST.txt records, for each corpus, its sources,
file count, bytes, sha256 and number of distinct words (\\w+, Unicode).
Exits 3 with a message if a package is missing.
"""
import base64
import glob
import gzip
import hashlib
import os
import re
import sys

MB = 10**6
PERL_POD = sorted(glob.glob("/usr/share/perl/5.*/pod/*.pod"))
CORPORA = {
    "english": (20 * MB, [
        ("python3.11-doc", sorted(glob.glob("/usr/share/doc/python3.11/html/_sources/**/*.txt", recursive=True))),
        ("perl-doc", PERL_POD),
    ]),
    "code": (20 * MB, [
        ("python3.11 (standard library)", sorted(glob.glob("/usr/lib/python3.11/**/*.py", recursive=True))),
        ("/usr/include (C headers)", sorted(glob.glob("/usr/include/**/*.h", recursive=True))),
    ]),
    "multilingual": (None, [
        ("manpages-%s (%s)" % (lang.split("_")[0], lang), sorted(glob.glob("/usr/share/man/%s/man*/*.gz" % lang)), 2 * MB)
        for lang in ["de", "fr", "es", "pl", "ru", "ja", "zh_CN", "zh_TW"]
    ]),
}


def read(path):
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def build(name, total, sources, out_dir):
    out = bytearray()
    lines = []
    for src in sources:
        label, files = src[0], src[1]
        budget = src[2] if len(src) > 2 else None
        if not files:
            sys.exit("make_corpora: %s: no files from %s (sh tools/deps.sh install-bench)" % (name, label))
        start, used = len(out), 0
        for path in files:
            if (total and len(out) >= total) or (budget and len(out) - start >= budget):
                break
            try:
                data = read(path)
                data.decode("utf-8")  # tiktoken takes strings: valid UTF-8 only
            except (OSError, UnicodeDecodeError):
                continue
            if data and not data.endswith(b"\n"):
                data += b"\n"
            out += data
            used += 1
        lines.append("  %-30s %6d files %10d bytes" % (label, used, len(out) - start))
    words = set(re.findall(r"\w+", out.decode("utf-8", "replace")))
    path = os.path.join(out_dir, name + ".txt")
    with open(path, "wb") as f:
        f.write(out)
    head = "%s: %d bytes, sha256 %s, %d distinct words" % (
        name, len(out), hashlib.sha256(out).hexdigest(), len(words))
    return [head] + lines


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpora.py DIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    manifest = []
    for name, (total, sources) in CORPORA.items():
        manifest += build(name, total, sources, out_dir)
    with open(os.path.join(out_dir, "multilingual.txt"), "rb") as f:
        b64 = base64.b64encode(f.read())[:10 * MB]
    with open(os.path.join(out_dir, "base64.txt"), "wb") as f:
        f.write(b64)
    manifest.append("base64: %d bytes, sha256 %s, one line: multilingual.txt in base64" % (
        len(b64), hashlib.sha256(b64).hexdigest()))
    with open(os.path.join(out_dir, "MANIFEST.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    print("\n".join(manifest))


if __name__ == "__main__":
    main()
