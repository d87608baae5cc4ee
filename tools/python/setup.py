"""Builds gpt2in's CPython extension against libgpt2in.

The extension links the static library libgpt2in.a statically, so the
installed package needs only libutf8proc at run time. Which library:
  GPT2IN_LIB=path/to/libgpt2in.a   (the Makefile's `python` target and the
                                    tests set it to their build folder's)
  otherwise ../../build/libgpt2in.a, built with `make` first if missing.
GPT2IN_SANITIZE adds sanitizer flags (tests/test_python.sh). Build on Debian without network:
  /usr/bin/python3 -m pip install --no-build-isolation ./tools/python
"""
import os
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def static_lib():
    lib = os.environ.get("GPT2IN_LIB")
    if lib:
        if not os.path.isfile(lib):
            raise SystemExit(f"gpt2in: GPT2IN_LIB={lib} does not exist")
        return os.path.abspath(lib)
    lib = os.path.join(ROOT, "build", "libgpt2in.a")
    if not os.path.isfile(lib):
        if not os.path.isfile(os.path.join(ROOT, "Makefile")):
            raise SystemExit("gpt2in: build libgpt2in.a first (make) or set GPT2IN_LIB")
        subprocess.check_call(["make", "-C", ROOT, "build/libgpt2in.a"])
    return lib


lib = static_lib()
# GPT2IN_SANITIZE="-fsanitize=address,undefined": for a sanitizer build of
# the library (tests/test_python.sh preloads the runtimes into Python).
sanitize = os.environ.get("GPT2IN_SANITIZE", "").split()
ext = Extension(
    "gpt2in._gpt2in",
    sources=["gpt2in/_gpt2in.c"],
    include_dirs=[os.path.join(ROOT, "bpe"), os.path.join(ROOT, "embed")],
    extra_objects=[lib],
    libraries=["utf8proc", "jansson", "m"],
    extra_compile_args=["-std=c11", "-pthread", "-Wall", "-Wextra", "-Wno-missing-field-initializers",
                        "-fvisibility=hidden"] + sanitize,
    extra_link_args=["-pthread"] + sanitize,
    depends=[lib, os.path.join(ROOT, "bpe", "bpe.h"), os.path.join(ROOT, "embed", "embed.h")],
)

setup(
    packages=["gpt2in"],
    package_data={"gpt2in": ["py.typed", "*.pyi"]},
    include_package_data=False,
    ext_modules=[ext],
)
