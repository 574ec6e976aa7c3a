"""Reading a safetensors file into numpy arrays, bfloat16 included.

safetensors' numpy reader refuses bfloat16 (numpy has no such type), which training tools of the
field save in. A bfloat16 number is the top half of a float32, so its array is widened exactly;
the file's layout (an 8-byte header length, a JSON header of each tensor's dtype, shape and byte
range, then the data) is read directly for that.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

__all__ = ["read_safetensors"]

_TYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(metadata, tensors)`` of the file; a ValueError when it is truncated or corrupt."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
            if all(a.dtype.name != "bfloat16" for a in tensors.values()):
                return handle.metadata() or {}, tensors
    except TypeError:              # a dtype numpy has not (bfloat16): read it here
        pass                       # (with ml_dtypes imported, numpy has one of its own: read too)
    except SafetensorError as exc:
        raise ValueError(str(exc)) from None
    data = Path(path).read_bytes()
    size = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8:8 + size])
    except RecursionError:                    # (nested thousands deep)
        raise ValueError("its header is not valid JSON") from None
    body = data[8 + size:]
    tensors = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = body[begin:end]
        if entry["dtype"] == "BF16":
            array = (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")
        elif entry["dtype"] in _TYPES:
            array = np.frombuffer(raw, _TYPES[entry["dtype"]]).copy()
        else:
            raise ValueError(f"tensor {key!r} has type {entry['dtype']}, which livelatent cannot read")
        tensors[key] = array.reshape(entry["shape"])
    return header.get("__metadata__") or {}, tensors
