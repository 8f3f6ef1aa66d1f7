"""Unpaired ``(a, b)`` image pipelines for CycleGAN: two domains, shuffled independently.

Every source here yields ``(a [batch, Ha, Wa, Ca], b [batch, Hb, Wb, Cb])`` batches,
``float32`` in ``[-1, 1]``, where ``a`` and ``b`` come from two *separate* pipelines (each the
package's usual one: seeded shuffle reshuffled every epoch, ``drop_remainder=True``) zipped
together. The two shuffles use two seeds drawn from ``numpy.random.SeedSequence(seed)``, so
the pairing of an ``a`` with a ``b`` carries no information. An epoch is as long as the
*larger* domain: the smaller one repeats (reshuffled) to fill it, as the CycleGAN paper's
loader does.

Sources:

* :func:`from_arrays` -- two in-memory arrays (any value range :func:`tfgan_app.data.
  from_arrays` accepts);
* :func:`from_folders` -- the CycleGAN datasets' layout, ``root/trainA``, ``root/trainB``,
  ``root/testA``, ``root/testB`` (:func:`tfgan_app.data.from_directory` reads each: PNG/JPEG/
  BMP, every file checked, errors name the folder and file);
* :func:`from_tfds` -- TFDS ``cycle_gan/<name>`` (``horse2zebra``, ``monet2photo``, ...), whose
  splits are ``trainA``, ``trainB``, ``testA``, ``testB``;
* :func:`offline` -- the offline default with a **known** mapping, built from scikit-learn's
  digits (upsampled to ``image_size``): domain A holds one half of the digits ``train`` split,
  domain B the *other* half under :func:`transform` (inverted, strokes thickened), so no
  image of A has its counterpart in B. :func:`heldout` gives held-out pairs ``(a, T(a))`` and
  labels from the digits ``test`` split, for measuring a translation against the truth.

``ds.info`` has ``"unpaired": True``, ``"domain_shapes"`` (``{"a": [...], "b": [...]}``),
``data_shape`` (B's shape: what ``G: A -> B`` produces) and ``source_shape`` (A's).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfgan_app.data import _pipeline as P

OFFLINE = ("digits",)
#: Seed of the fixed permutation that splits the digits ``train`` split into domains A and B.
DOMAIN_SPLIT_SEED = 19
SPLITS = ("train", "test")


def domain_seeds(seed: int) -> tuple[int, int]:
    """The two shuffle seeds (``a``, ``b``) of an unpaired pipeline seeded ``seed``."""
    s = np.random.SeedSequence(int(seed)).generate_state(2)
    return int(s[0]), int(s[1])


def zip_domains(ds_a, ds_b, *, name: str, source: str, **extra):
    """``(a, b)`` batches from two batched datasets with ``info``; the shorter repeats.

    The result's ``info`` describes both domains (see the module docstring); each input's
    ``info`` must come from :mod:`tfgan_app.data`.
    """
    ia, ib = P.dataset_info(ds_a), P.dataset_info(ds_b)
    if ia["batch_size"] != ib["batch_size"]:
        raise ValueError(f"the two domains have batch sizes {ia['batch_size']} and "
                         f"{ib['batch_size']}; they must be equal")
    na, nb = int(ds_a.cardinality()), int(ds_b.cardinality())
    if na >= 0 and nb >= 0 and na != nb:  # both finite: the shorter repeats
        ds_a, ds_b = (ds_a.repeat(), ds_b) if na < nb else (ds_a, ds_b.repeat())
    ds = tf.data.Dataset.zip((ds_a, ds_b))  # keeps both inputs' tf.data options
    steps = None if min(na, nb) < 0 else max(na, nb)
    info = P.make_info(name=name, source=source, sample_shape=ib["data_shape"],
                       num_examples=None if steps is None else steps * ia["batch_size"],
                       batch_size=ia["batch_size"], with_labels=False, seed=extra.pop("seed",
                                                                                       None),
                       unpaired=True, source_shape=list(ia["data_shape"]),
                       domain_shapes={"a": list(ia["data_shape"]), "b": list(ib["data_shape"])},
                       domain_examples={"a": ia["num_examples"], "b": ib["num_examples"]},
                       **extra)
    info["steps_per_epoch"] = steps
    return P.attach(ds, info)


def from_arrays(a, b, *, batch_size: int = 1, shuffle: bool = True, seed: int = 0,
                image_size=None, value_range=None, deterministic: bool = True,
                name: str = "unpaired-arrays", **extra):
    """``(a, b)`` batches from two unrelated image arrays.

    Args:
      a, b: images of domain A and domain B, ``[N, H, W(, C)]`` (the two may differ in
        count, size and channels), value ranges as :func:`tfgan_app.data.from_arrays`.
      batch_size: batch size of both domains (the CycleGAN paper uses 1).
      shuffle, seed: two independent seeded shuffles (:func:`domain_seeds`).
      image_size: resize both domains to it (int or ``(H, W)``); ``None`` keeps the sizes.
      value_range: the input range of both arrays (default: inferred per array).

    Returns:
      the zipped dataset (``ds.info`` as in the module docstring).
    """
    from tfgan_app.data.arrays import from_arrays as one

    sa, sb = domain_seeds(seed)
    kw = dict(batch_size=batch_size, shuffle=shuffle, image_size=image_size,
              value_range=value_range, deterministic=deterministic)
    dsa = _named("domain A", lambda: one(a, seed=sa, name=f"{name}:A", **kw))
    dsb = _named("domain B", lambda: one(b, seed=sb, name=f"{name}:B", **kw))
    return zip_domains(dsa, dsb, name=name, source="arrays", seed=seed, **extra)


def _named(what, build):
    try:
        return build()
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def from_folders(root, split: str = "train", *, batch_size: int = 1, image_size=None,
                 channels=None, shuffle: bool = True, seed: int = 0, **kwargs):
    """``(a, b)`` batches from ``root/<split>A`` and ``root/<split>B`` (the CycleGAN datasets'
    layout). ``image_size``, ``channels``, ``cache``, ``validate``...: as
    :func:`tfgan_app.data.from_directory`, for both folders.

    Raises:
      ValueError: ``root`` or a domain folder missing, a folder without images, an unreadable
        image (each named by path), fewer images than ``batch_size``.
    """
    from tfgan_app.data.directory import from_directory

    _check_split(split)
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ValueError(f"unpaired image folder not found: {root} (expected {root}/{split}A "
                         f"and {root}/{split}B)")
    sa, sb = domain_seeds(seed)
    kw = dict(batch_size=batch_size, image_size=image_size, channels=channels, shuffle=shuffle,
              **kwargs)
    dsa = _named(f"domain A ({split}A)",
                 lambda: from_directory(os.path.join(root, f"{split}A"), seed=sa, **kw))
    dsb = _named(f"domain B ({split}B)",
                 lambda: from_directory(os.path.join(root, f"{split}B"), seed=sb, **kw))
    return zip_domains(dsa, dsb, name=f"unpaired:{root}", source="folders", seed=seed,
                       split=split, path=os.path.abspath(root))


def from_tfds(name: str, split: str = "train", *, batch_size: int = 1, image_size=None,
              shuffle: bool = True, seed: int = 0, **kwargs):
    """``(a, b)`` batches from TFDS ``cycle_gan/<name>`` (``name`` with or without the
    ``cycle_gan/`` prefix): its ``<split>A`` and ``<split>B`` splits.
    ``data_dir``, ``download``, ``cache``...: as :func:`tfgan_app.data.from_tfds`."""
    from tfgan_app.data.tfds_source import from_tfds as one

    _check_split(split)
    full = name if name.startswith("cycle_gan/") else f"cycle_gan/{name}"
    sa, sb = domain_seeds(seed)
    kw = dict(batch_size=batch_size, image_size=image_size, shuffle=shuffle, **kwargs)
    dsa = _named(f"domain A ({split}A)", lambda: one(full, f"{split}A", seed=sa, **kw))
    dsb = _named(f"domain B ({split}B)", lambda: one(full, f"{split}B", seed=sb, **kw))
    return zip_domains(dsa, dsb, name=f"tfds:{full}", source="tfds", seed=seed, split=split,
                       tfds_name=full)


# --------------------------------------------------------------------------- offline default

def transform(images) -> np.ndarray:
    """The offline task's known mapping ``T: A -> B``: strokes thickened by one pixel on each
    side (a 3x3 grey-level dilation, i.e. a 3x3 max filter) and the image inverted
    (``-x``). ``float32 [N, H, W, C]`` in ``[-1, 1]`` -> the same."""
    x = np.asarray(images, np.float32)
    thick = tf.nn.max_pool2d(x, ksize=3, strides=1, padding="SAME").numpy()
    return (-thick).astype(np.float32)


def _digits(split: str, image_size: int):
    from tfgan_app.data.digits import load_digits_arrays

    x, y = load_digits_arrays(split)
    x = tf.image.resize(x, [image_size, image_size], method="bilinear").numpy()
    return np.clip(x, -1.0, 1.0).astype(np.float32), y


def offline_domains(name: str = "digits", *, image_size: int = 32):
    """``(a, b)``: the offline task's two training domains as arrays (see :func:`offline`)."""
    if name not in OFFLINE:
        raise ValueError(f"unknown offline unpaired task {name!r}; valid: {', '.join(OFFLINE)}")
    x, _ = _digits("train", int(image_size))
    order = np.random.default_rng(DOMAIN_SPLIT_SEED).permutation(len(x))
    half = len(x) // 2
    return x[np.sort(order[:half])], transform(x[np.sort(order[half:])])


def offline(name: str = "digits", *, image_size: int = 32, batch_size: int = 16,
            shuffle: bool = True, seed: int = 0, deterministic: bool = True):
    """The offline default: digits (domain A) and the *other* half of the digits under
    :func:`transform` (domain B), ``(a, b)`` batches of ``[batch, S, S, 1]``.

    Domain A is the first half of a fixed permutation (:data:`DOMAIN_SPLIT_SEED`) of the
    digits ``train`` split (719 images), domain B the second half (719) transformed; the two
    are disjoint, so training never sees a pair ``(a, T(a))``. Held-out pairs:
    :func:`heldout`.
    """
    a, b = offline_domains(name, image_size=image_size)
    ds = from_arrays(a, b, batch_size=batch_size, shuffle=shuffle, seed=seed,
                     deterministic=deterministic, name=f"unpaired-{name}", task=name)
    ds.info["image_size"] = int(image_size)
    return ds


def heldout(name: str = "digits", n: int | None = None, *, image_size: int = 32):
    """Held-out pairs of the offline task: ``(a, T(a), labels)`` from the digits ``test``
    split (359 images; the first ``n``, or all): ``float32 [n, S, S, 1]`` twice and
    ``int32 [n]``."""
    if name not in OFFLINE:
        raise ValueError(f"unknown offline unpaired task {name!r}; valid: {', '.join(OFFLINE)}")
    x, y = _digits("test", int(image_size))
    x, y = x[:n], y[:n]
    return x, transform(x), y


def heldout_domains(info: dict, n: int = 8):
    """``(a, b)``: ``n`` held-out images of each domain of a dataset described by ``info``, for
    pictures: the offline task's held-out pairs, or the first ``n`` images (fewer when the
    folders hold fewer) of ``testA`` and ``testB`` of a folder dataset. ``None`` when the data has no held-out part (arrays, TFDS)."""
    if info.get("task") in OFFLINE:
        a, b, _ = heldout(info["task"], n, image_size=int(info["image_size"]))
        return a, b
    if info.get("source") == "folders":
        shapes = info["domain_shapes"]
        try:
            ds = from_folders(info["path"], "test", batch_size=1, shuffle=False,
                              image_size=tuple(shapes["a"][:2]))
        except ValueError:
            return None
        pairs = list(ds.take(n).as_numpy_iterator())
        if not pairs or [list(p.shape[1:]) for p in pairs[0]] != [shapes["a"],
                                                                         shapes["b"]]:
            return None
        return (np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]))
    return None
