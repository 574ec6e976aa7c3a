"""Reading .npy and .npz files someone else may have made, without trusting their headers.

``np.load`` allocates what a file's header declares before it reads the data: a 64-byte file
declaring ``(10**10,)`` floats asked for 37 GiB (a MemoryError traceback). A .npy file is mapped
first (mapping checks the declared size against the file's) and then copied; each member of a
.npz archive has its declared size checked against the member's before it is read.
"""

from __future__ import annotations

import math
import zipfile

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["read_npy", "read_npz"]


def read_npy(path) -> np.ndarray:
    """A .npy file's array, in memory of its own (ValueError: it declares more than it holds)."""
    return np.array(np.load(path, allow_pickle=False, mmap_mode="r"))


def read_npz(path) -> dict[str, np.ndarray]:
    """The arrays of a .npz archive by name (ValueError: a member declares more than it holds;
    zipfile.BadZipFile: not an archive)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                version = npy_format.read_magic(member)
                read_header = (npy_format.read_array_header_1_0 if version == (1, 0)
                               else npy_format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
            declared = math.prod(shape) * dtype.itemsize
            if declared > info.file_size:
                raise ValueError(f"{info.filename} declares {shape} {dtype}, {declared} bytes, "
                                 f"and holds {info.file_size}")
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
