"""Raw IDX files (the original MNIST / Fashion-MNIST distribution format), gzipped or not.

IDX layout: a 4-byte magic number ``0x00 0x00 <type> <ndim>``, ``ndim`` big-endian
``uint32`` dimension sizes, then the data in C order, big-endian. Type codes: ``0x08``
uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64.
MNIST images are ``0x00000803`` (uint8, ``[N, 28, 28]``), labels ``0x00000801`` (uint8,
``[N]``). Gzip is detected from the content (``1f 8b``), not the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from tfgan_app.data import _pipeline as P
from tfgan_app.data.arrays import from_arrays

_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path) -> bytes:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"IDX file not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from e
    return data


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array of its declared shape/dtype.

    Raises ``ValueError`` naming the file for: a missing file, a bad magic number (first two
    bytes not zero, unknown type code, zero dimensions), a truncated header, or a data size
    that does not match the header.
    """
    data = _read_bytes(path)
    path = os.fspath(path)
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(data)} bytes)")
    z0, z1, code, ndim = data[0], data[1], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if z0 != 0 or z1 != 0 or code not in _IDX_TYPES or ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{magic:08X} (expected 0x0000TTDD with type "
            f"TT in {{08,09,0B,0C,0D,0E}} and DD >= 1 dimensions; MNIST images are "
            "0x00000803, labels 0x00000801)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header} "
                         f"for {ndim} dimensions)")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path}: IDX header declares shape {list(dims)} of {dtype.name} "
                         f"({expected} bytes in all) but the file has {len(data)} bytes")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def load_idx_arrays(images_path, labels_path=None):
    """Images (``uint8 [N, H, W]`` or ``[N, H, W, C]``) and labels (``int32 [N]`` or None).

    Checks that images are uint8 with 3 or 4 dimensions, labels have 1 dimension, and the
    counts match; errors name the file.
    """
    x = read_idx(images_path)
    if x.ndim not in (3, 4):
        raise ValueError(f"{os.fspath(images_path)}: IDX images must have 3 dimensions "
                         f"[N, H, W] (or 4 with channels), got shape {list(x.shape)}")
    if x.dtype != np.uint8:
        raise ValueError(f"{os.fspath(images_path)}: IDX images must be uint8 (type 0x08), "
                         f"got {x.dtype}")
    y = None
    if labels_path is not None:
        y = read_idx(labels_path)
        if y.ndim != 1:
            raise ValueError(f"{os.fspath(labels_path)}: IDX labels must have 1 dimension, "
                             f"got shape {list(y.shape)}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{os.fspath(labels_path)}: IDX labels must be integers, got "
                             f"{y.dtype}")
        if len(y) != len(x):
            raise ValueError(f"{os.fspath(images_path)} has {len(x)} images but "
                             f"{os.fspath(labels_path)} has {len(y)} labels")
        y = y.astype(np.int32)
    return x, y


def from_idx(images_path, labels_path=None, *, with_labels=None, num_classes=None,
             image_size=None, batch_size: int = P.DEFAULT_BATCH_SIZE, shuffle: bool = True,
             seed: int = 0, deterministic: bool = True):
    """A ``tf.data`` pipeline over MNIST-style IDX files (``.gz`` or raw).

    Args:
      images_path: IDX images, uint8 ``[N, H, W]`` (e.g. ``train-images-idx3-ubyte.gz``).
      labels_path: optional IDX labels ``[N]`` (e.g. ``train-labels-idx1-ubyte.gz``).
      with_labels: yield ``(image, label)``; default: ``labels_path is not None``; ``True``
        without ``labels_path`` is an error.
      num_classes: default ``max(label) + 1``.
      image_size, batch_size, shuffle, seed, deterministic: as in
        :func:`tfgan_app.data.from_arrays`.

    Returns:
      ``tf.data.Dataset`` of ``float32 [batch_size, H, W, 1]`` in ``[-1, 1]`` (or
      ``(images, int32 [batch_size])``) with ``ds.info``.
    """
    if with_labels and labels_path is None:
        raise ValueError("with_labels=True but no labels_path was given")
    x, y = load_idx_arrays(images_path, labels_path)
    if with_labels is None:
        with_labels = y is not None
    name = os.path.basename(os.fspath(images_path))
    return from_arrays(x, y, with_labels=with_labels, value_range=(0, 255),
                       num_classes=num_classes, image_size=image_size, batch_size=batch_size,
                       shuffle=shuffle, seed=seed, deterministic=deterministic,
                       name=f"idx:{name}", source="idx",
                       images_path=os.fspath(images_path),
                       labels_path=None if labels_path is None else os.fspath(labels_path))
