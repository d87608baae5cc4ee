#!/usr/bin/python3
"""Writes the malformed-file catalogue in tests/fixtures/malformed/: one small
file per validation rule and per bug class seen in other safetensors/.npy
readers (see /work/shared/reference/weights-formats.md), each with the part
of the one-line error message that names the problem, plus valid edge cases
that must be accepted. Built byte by byte here (never by gpt2in).

    /usr/bin/python3 tests/gen_malformed.py [OUTDIR]

  bad/NAME.{safetensors,npy}   must make `gpt2in inspect` exit 2 with one line
  good/NAME.{safetensors,npy}  must be accepted (exit 0)
  expected.txt                 "bad/NAME<TAB>substring of the message" lines
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures", "malformed")
if os.path.isdir(OUT):
    shutil.rmtree(OUT)
os.makedirs(os.path.join(OUT, "bad"))
os.makedirs(os.path.join(OUT, "good"))
expected = []


def st(header, data=b"", n=None):
    """A safetensors image: u64 N + header (str or bytes) + data."""
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if n is None else n) + h + data


def ent(dtype="F32", shape=(1,), offs=(0, 4)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offs)}


def js(d):
    return json.dumps(d, separators=(",", ":"))


def bad(name, blob, why):
    path = "bad/" + name
    with open(os.path.join(OUT, path), "wb") as f:
        f.write(blob)
    expected.append((path, why))


def good(name, blob):
    with open(os.path.join(OUT, "good", name), "wb") as f:
        f.write(blob)


F4 = b"\0\0\x80\x3f"  # 1.0f
T1 = '{"t":%s}'

# ---- safetensors: length prefix ------------------------------------------------
bad("empty.safetensors", b"", "is empty")
bad("short7.safetensors", b"\x02\0\0\0\0\0\0", "shorter than the 8-byte header length")
bad("n_over_limit.safetensors", st("{}", n=100_000_001), "over the limit of 100000000")
bad("n_u64_max.safetensors", st("{}", n=2 ** 64 - 1), "over the limit")
bad("n_wraps_8_plus_n.safetensors", st("{}", n=2 ** 64 - 8), "over the limit")
bad("n_beyond_file.safetensors", st("{}", n=1000), "runs past the end of the file")
bad("n_limit_beyond_file.safetensors", st("{}", n=100_000_000), "runs past the end of the file")
full = st(js({"t": ent()}), F4)
bad("truncated_header.safetensors", full[:30], "runs past the end of the file")
bad("truncated_data.safetensors", full[:-2], "run past the end of the data")
bad("zero_header.safetensors", st(""), "must be a JSON object")
bad("lfs_pointer.safetensors",
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707\n"
    b"size 548105171\n", "Git LFS pointer")

# ---- shapes and offsets ---------------------------------------------------------
bad("shape_wraps_to_zero.safetensors", st(js({"t": ent(shape=(2 ** 32, 2 ** 32), offs=(0, 0))})),
    "more than 2^64 bits")
bad("shape_wraps_bytes.safetensors", st(js({"t": ent(shape=(2 ** 62,), offs=(0, 0))})),
    "more than 2^64 bits")
bad("shape_u64_max_times_2.safetensors", st(js({"t": ent("U8", (2 ** 64 - 1, 2), (0, 0))})),
    "more than 2^64 bits")
bad("shape_negative.safetensors", st(T1 % '{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}', F4),
    "shape entry is negative")
bad("offset_negative.safetensors", st(T1 % '{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}', F4),
    "data offset is negative")
bad("offsets_reversed.safetensors", st(js({"t": ent(offs=(4, 0))}), F4), "end before they begin")
bad("offsets_past_buffer.safetensors", st(js({"t": ent(shape=(250000,), offs=(0, 1000000))}), F4),
    "run past the end of the data")
bad("offsets_huge.safetensors", st(js({"t": ent("U8", (2 ** 60,), (0, 2 ** 60))}), F4),
    "run past the end of the data")
bad("offsets_not_checked_against_shape.safetensors", st(js({"t": ent(shape=(2, 2), offs=(0, 12))}), F4 * 3),
    'tensor "t": data_offsets [0, 12] hold 12 bytes but F32 [2, 2] needs 16')
bad("hole_at_start.safetensors", st(js({"t": ent(offs=(4, 8))}), F4 * 2), "a hole of 4 bytes")
bad("hole_between.safetensors", st(js({"a": ent(), "b": ent(offs=(8, 12))}), F4 * 3),
    "a hole of 4 bytes")
bad("overlap.safetensors", st(js({"a": ent(shape=(2,), offs=(0, 8)), "b": ent(offs=(4, 8))}), F4 * 2),
    "overlaps the previous tensor")
bad("same_range_twice.safetensors", st(js({"a": ent(), "b": ent()}), F4), "overlaps")
bad("trailing_bytes.safetensors", st(js({"t": ent()}), F4 + b"\0"), "1 trailing bytes")
bad("data_without_tensors.safetensors", st("{}", F4), "4 trailing bytes")
bad("f4_half_byte.safetensors", st(js({"t": ent("F4", (3,), (0, 1))}), b"\0"),
    "not a whole number of bytes")
bad("nine_dims.safetensors", st(js({"t": ent(shape=(1,) * 9)}), F4), "more than 8 dimensions")

# ---- numbers ----------------------------------------------------------------------
bad("number_fraction.safetensors", st(T1 % '{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}', F4),
    "fraction or exponent")
bad("number_exponent.safetensors", st(T1 % '{"dtype":"F32","shape":[1],"data_offsets":[0,4e0]}', F4),
    "fraction or exponent")
bad("number_over_u64.safetensors",
    st(T1 % '{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}', F4),
    "does not fit in 64 bits")
bad("number_leading_zero.safetensors", st(T1 % '{"dtype":"F32","shape":[01],"data_offsets":[0,4]}', F4),
    "leading zero")
bad("number_as_string.safetensors", st(T1 % '{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}', F4),
    "not an unsigned integer")
bad("number_plus_sign.safetensors", st(T1 % '{"dtype":"F32","shape":[+1],"data_offsets":[0,4]}', F4),
    "not an unsigned integer")
bad("offsets_three.safetensors", st(T1 % '{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}', F4),
    "exactly 2 numbers")
bad("offsets_one.safetensors", st(T1 % '{"dtype":"F32","shape":[1],"data_offsets":[4]}', F4),
    "exactly 2 numbers")

# ---- tensor entries -------------------------------------------------------------------
bad("dtype_unknown.safetensors", st(js({"t": ent("F31")}), F4), 'unknown dtype "F31"')
bad("dtype_lowercase.safetensors", st(js({"t": ent("f32")}), F4), 'unknown dtype "f32"')
bad("dtype_not_string.safetensors", st(T1 % '{"dtype":32,"shape":[1],"data_offsets":[0,4]}', F4),
    "expected a string")
bad("missing_dtype.safetensors", st(T1 % '{"shape":[1],"data_offsets":[0,4]}', F4), 'missing field "dtype"')
bad("missing_shape.safetensors", st(T1 % '{"dtype":"F32","data_offsets":[0,4]}', F4), 'missing field "shape"')
bad("missing_offsets.safetensors", st(T1 % '{"dtype":"F32","shape":[1]}', F4), 'missing field "data_offsets"')
bad("unknown_field.safetensors",
    st(T1 % '{"dtype":"F32","shape":[1],"data_offsets":[0,4],"stride":[1]}', F4), 'unknown field "stride"')
bad("duplicate_field.safetensors",
    st(T1 % '{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}', F4), 'duplicate field "dtype"')
bad("entry_not_object.safetensors", st('{"t":[1]}'), "a tensor entry must be an object")
bad("shape_not_array.safetensors", st(T1 % '{"dtype":"F32","shape":1,"data_offsets":[0,4]}', F4),
    '"shape" must be an array')
bad("duplicate_name.safetensors", st('{"t":%s,"t":%s}' % (js(ent()), js(ent(offs=(4, 8)))), F4 * 2),
    'tensor "t" appears twice')

# ---- metadata -------------------------------------------------------------------------
bad("metadata_number.safetensors", st('{"__metadata__":{"format":1}}'), 'value of "format" is not a string')
bad("metadata_null.safetensors", st('{"__metadata__":{"format":null}}'), "is not a string")
bad("metadata_object.safetensors", st('{"__metadata__":{"a":{"b":"c"}}}'), "is not a string")
bad("metadata_not_object.safetensors", st('{"__metadata__":"pt"}'), '"__metadata__" must be an object')
bad("metadata_duplicate_key.safetensors", st('{"__metadata__":{"a":"1","a":"2"}}'),
    'duplicate __metadata__ key "a"')
bad("metadata_twice.safetensors", st('{"__metadata__":{},"__metadata__":{}}'), 'duplicate "__metadata__"')

# ---- JSON text ---------------------------------------------------------------------------
bad("nul_padding.safetensors", st(b'{}\0\0\0\0\0\0'), "NUL padding is not allowed")
bad("invalid_utf8.safetensors", st(b'{"\xff":{}}'), "not valid UTF-8 at header byte 2 (file byte 10)")
bad("overlong_utf8.safetensors", st(b'{"\xc0\xaf":{}}'), "not valid UTF-8")
bad("surrogate_utf8.safetensors", st(b'{"\xed\xa0\x80":{}}'), "not valid UTF-8")
bad("truncated_utf8.safetensors", st(b'{"\xe2\x82":{}}'), "not valid UTF-8")
bad("utf8_bom.safetensors", st(b'\xef\xbb\xbf{}'), "must be a JSON object")
bad("not_json.safetensors", st("hello"), "must be a JSON object")
bad("top_level_array.safetensors", st("[]"), "must be a JSON object")
bad("trailing_garbage.safetensors", st("{} x"), "trailing characters after the JSON object")
bad("two_objects.safetensors", st("{}{}"), "trailing characters")
bad("trailing_comma.safetensors", st('{"__metadata__":{},}'), "expected a string")
bad("single_quotes.safetensors", st("{'a':{}}"), "expected a string")
bad("unterminated_string.safetensors", st('{"abc'), "unterminated string")
bad("unterminated_object.safetensors", st('{"__metadata__":{}'), "expected ',' or '}'")
bad("lone_surrogate_escape.safetensors", st('{"\\ud800":{}}'), "lone high surrogate")
bad("lone_low_surrogate.safetensors", st('{"\\udc00":{}}'), "lone low surrogate")
bad("nul_escape.safetensors", st('{"\\u0000":{}}'), "\\u0000 in a string")
bad("control_char.safetensors", st('{"a\tb":{}}'), "control character in a string")
bad("bad_escape.safetensors", st('{"\\x41":{}}'), "bad escape")
bad("bad_unicode_escape.safetensors", st('{"\\u12G4":{}}'), "bad \\u escape")
bad("newline_in_name_msg.safetensors", st('{"a\\nb":%s}' % js(ent("F32", (2,), (0, 4))), F4),
    'tensor "a\\x0ab": data_offsets [0, 4] hold 4 bytes but F32 [2] needs 8')

# ---- .npy ---------------------------------------------------------------------------------


def npy(dict_text, data=b"", major=1, minor=0, hlen=None, pad=True):
    d = dict_text.encode() if isinstance(dict_text, str) else dict_text
    pre = 10 if major == 1 else 12
    if pad:
        total = -(-(pre + len(d) + 1) // 64) * 64
        d = d + b" " * (total - pre - len(d) - 1) + b"\n"
    n = len(d) if hlen is None else hlen
    ln = struct.pack("<H", n) if major == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes([major, minor]) + ln + d + data


D = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
bad("npy_empty.npy", b"\x93NUMPY", "not a .npy file")
# no .npy magic, so it is read as safetensors: its first 8 bytes make a huge N
bad("npy_bad_magic.npy", b"\x93NUMPZ\x01\x00" + npy(D, F4 * 2)[8:], "over the limit")
bad("npy_version_4.npy", npy(D, F4 * 2, major=4), ".npy version 4.0 is not supported")
bad("npy_version_1_1.npy", npy(D, F4 * 2, minor=1), ".npy version 1.1 is not supported")
bad("npy_truncated_preamble.npy", b"\x93NUMPY\x02\x00\x10\x00\x00", "truncated .npy preamble")
bad("npy_header_over_limit.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" + " " * 10000, F4 * 2),
    "over the limit of 10000 bytes")
bad("npy_header_beyond_file.npy", npy(D, b"", hlen=5000, pad=False), "runs past the end of the file")
bad("npy_truncated_data.npy", npy(D, F4), "needs 8 data bytes")
bad("npy_trailing_bytes.npy", npy(D, F4 * 3), "trailing bytes")
bad("npy_fortran_order.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", F4 * 4),
    "fortran_order True")
bad("npy_big_endian.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", F4 * 2), "big-endian")
bad("npy_object_dtype.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", F4 * 4),
    "dtype '|O' is not supported")
bad("npy_unicode_dtype.npy", npy("{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", b"\0" * 20),
    "dtype '<U5' is not supported")
bad("npy_extra_key.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }", F4 * 2),
    "unknown key 'x'")
bad("npy_missing_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, }", F4 * 2), "missing key 'shape'")
bad("npy_duplicate_key.npy", npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", F4 * 2),
    "duplicate key 'descr'")
bad("npy_shape_not_tuple.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", F4 * 2),
    "not a tuple")
bad("npy_shape_list.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", F4 * 2),
    "shape must be a tuple")
bad("npy_negative_dim.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", F4 * 2),
    "negative shape entry")
bad("npy_shape_wraps.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"),
    "more than 2^64 bytes")
bad("npy_dim_over_u64.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,), }"),
    "does not fit in 64 bits")
bad("npy_not_dict.npy", npy("[1, 2]", F4 * 2), "expected '{'")
bad("npy_fortran_string.npy", npy("{'descr': '<f4', 'fortran_order': 'False', 'shape': (2,), }", F4 * 2),
    "fortran_order must be True or False")
bad("npy_v3_bad_utf8.npy", npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } \xff", F4 * 2, major=3),
    "not valid UTF-8")
bad("npy_nine_dims.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", F4),
    "more than 8 dimensions")
bad("npy_garbage_after.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } 1", F4 * 2),
    "unexpected characters after the dict")

with open(os.path.join(OUT, "expected.txt"), "w") as f:
    for p, why in expected:
        f.write("%s\t%s\n" % (p, why))

# ---- valid edge cases ------------------------------------------------------------------------
good("empty_header.safetensors", st("{}"))
good("whitespace_around.safetensors", st(" \t\r\n{ \n}\n\t "))
good("padded_with_spaces.safetensors", st('{"t":%s}' % js(ent()) + " " * 5, F4))
good("metadata_only.safetensors", st('{"__metadata__":{"format":"pt","":""}}'))
good("rank0.safetensors", st(js({"t": ent(shape=(), offs=(0, 4))}), F4))
good("zero_size.safetensors", st(js({"a": ent(shape=(0,), offs=(0, 0)), "b": ent(offs=(0, 4)),
                                      "c": ent(shape=(5, 0), offs=(4, 4)), "d": ent("U8", (2 ** 64 - 1, 0), (4, 4))}), F4))
good("only_zero_size.safetensors", st(js({"a": ent(shape=(0, 768), offs=(0, 0))})))
good("eight_dims.safetensors", st(js({"t": ent(shape=(1,) * 8)}), F4))
good("keys_not_in_offset_order.safetensors", st(js({"b": ent(offs=(4, 8)), "a": ent()}), F4 * 2))
good("unicode_names.safetensors", st('{"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\":%s,"\u00fcber":%s}'
                                     % (js(ent()), js(ent(offs=(4, 8)))), F4 * 2))
good("unaligned_start.safetensors", st('{"t":%s} ' % js(ent("F32", (3,), (0, 12))), F4 * 3))
sizes = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4,
         "I64": 8, "U64": 8, "F64": 8, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "F8_E4M3FNUZ": 1,
         "F8_E5M2FNUZ": 1, "C64": 8}
hdr, off = {}, 0
for name, sz in sizes.items():
    hdr[name.lower()] = ent(name, (2,), (off, off + 2 * sz))
    off += 2 * sz
for name, bits in [("F4", 4), ("F6_E2M3", 6), ("F6_E3M2", 6)]:
    hdr[name.lower()] = ent(name, (4,), (off, off + bits // 2))
    off += bits // 2
good("every_dtype.safetensors", st(js(hdr), b"\0" * off))
good("npy_v2.npy", npy("{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }", b"\0" * 6, major=2))
good("npy_v3.npy", npy("{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }", b"\0" * 6, major=3))
good("npy_double_quotes.npy", npy('{"descr": "<f4", "fortran_order": False, "shape": (2,)}', F4 * 2))
good("npy_key_order.npy", npy("{'shape': (2, 1), 'fortran_order': False, 'descr': '<f4'}", F4 * 2))
good("npy_scalar.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", b"\0" * 8))
good("npy_empty.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 768), }"))
good("npy_unpadded.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (1,)}", b"\7", pad=False))
good("npy_fortran_1d.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", F4))
print("wrote %d bad and %d good files to %s" % (len(expected), len(os.listdir(os.path.join(OUT, "good"))), OUT))
