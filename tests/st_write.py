"""st_write.py - the test generators' safetensors writer, written from the
format's description (8-byte header length, JSON header padded with blanks
to 8 bytes, tensors in list order), independent of gpt2in."""
import json
import struct

import numpy as np

ST_DTYPE = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<u2"): "BF16"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: (name, ndarray, dtype name or None: from the array's dtype)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, arr, dt in tensors:
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt or ST_DTYPE[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
