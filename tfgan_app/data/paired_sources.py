"""Paired ``(source, target)`` images read from disk or TFDS, as ``tf.data`` pipelines.

Same conventions as every source (:mod:`tfgan_app.data.paired`): ``float32`` in ``[-1, 1]``,
seeded shuffle reshuffled each epoch, ``drop_remainder=True``, ``ds.info`` with
``"paired": True`` and ``"source_shape"``; optional random crops and flips applied identically
to both sides (:func:`tfgan_app.data.paired.augment_pairs`).

**Folders** (:func:`from_pair_folder`, ``pairs-folder:<path>`` in the data registry). Two
layouts, recognised by the folder's contents:

* ``<path>/A/`` and ``<path>/B/``: images paired by file name without extension (``A/x.png``
  with ``B/x.jpg``; sub-folders count as part of the name). Every name must be in both.
* otherwise, side-by-side ``A|B`` images (the pix2pix datasets' format, e.g. ``facades``):
  the left half is A, the right half B; the width must be even.

``direction="AtoB"`` translates A to B (A is the source), ``"BtoA"`` the reverse. Images are
PNG, JPEG or BMP (:data:`tfgan_app.data.directory.IMAGE_EXTENSIONS`), checked with PIL when the
dataset is built, so a corrupt file is named before training starts.

**Held-out pairs** (what the triptychs and ``report.json`` of a translation run judge;
:func:`tfgan_app.data.paired.heldout_pairs`): with split sub-folders (``train/`` and ``test/``
or ``val/`` under ``<path>``, or under ``A/`` and ``B/``: the pix2pix datasets' layout), the
``train`` split reads ``train/`` and the held-out pairs are ``test/`` (else ``val/``).
Without them, a seeded ``heldout_fraction`` of the pairs (default 10%) is held out and never
trained on (the file list is sorted, then split by a permutation of ``seed``). With ``crop``,
held-out pairs are cut centrally to the crop size. At most :data:`HELDOUT_LIMIT` held-out
pairs are read.

**TFDS** (:func:`from_tfds_pairs`, ``pairs-tfds:<name>``): a dataset with two image features,
named by ``source_key`` and ``target_key`` (``lr`` -> ``hr`` is found by itself, e.g.
``div2k``); held-out pairs come from ``heldout_split`` (default ``test``, else
``validation``).

Sizes: without ``image_size`` every source must have one size and every target one size,
the target's equal to the source's or an integer multiple of it (super-resolution); with
``image_size`` targets are resized to it (bilinear, antialiased) and sources to
``source_size`` (default: ``image_size`` divided by the pairs' size factor).
"""

from __future__ import annotations

import math
import os

import numpy as np
import tensorflow as tf

from tfgan_app.data import _pipeline as P
from tfgan_app.data.directory import list_image_files, validate_images
from tfgan_app.data.paired import augment_pairs, center_crop_pairs, size_factor

DIRECTIONS = ("AtoB", "BtoA")
SPLITS = ("train", "test")
SPLIT_FOLDERS = ("train", "test", "val")
HELDOUT_LIMIT = 1024
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}
KNOWN_TFDS_KEYS = (("lr", "hr"),)


def _check_choice(value, valid, what):
    if value not in valid:
        raise ValueError(f"{what} must be one of {valid}, got {value!r}")


def _channels(channels):
    """``None``, 1, 3 or ``(source, target)`` -> a pair (entries ``None``: detect)."""
    pair = tuple(channels) if isinstance(channels, (tuple, list)) else (channels, channels)
    if len(pair) != 2 or any(c not in (None, 1, 3) for c in pair):
        raise ValueError(f"channels must be None, 1, 3 or a (source, target) pair of them, "
                         f"got {channels!r}")
    return pair


def _hold_out(items, fraction, seed, where):
    """``({"train": items, "test": items}, description)``: a seeded ``fraction`` held out."""
    n = len(items)
    if not 0.0 < float(fraction) < 1.0:
        if float(fraction) != 0.0:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {fraction!r}")
        return {"train": items, "test": []}, "none (heldout_fraction=0)"
    k = int(math.ceil(float(fraction) * n))
    if k >= n:
        raise ValueError(f"{where} has {n} pairs: too few to hold out {fraction:.0%} of them")
    held = set(np.random.default_rng(seed).permutation(n)[:k].tolist())
    return ({"train": [it for i, it in enumerate(items) if i not in held],
             "test": [it for i, it in enumerate(items) if i in held]},
            f"{fraction:g} of the pairs, seed {seed}")


def _split_folders(root):
    """``(train folder, held-out folder or None)`` when ``root`` has split sub-folders
    (``train/`` and ``test/`` or ``val/``), else ``(None, None)``."""
    present = [d for d in SPLIT_FOLDERS if os.path.isdir(os.path.join(root, d))]
    if not present:
        return None, None
    if "train" not in present:
        raise ValueError(f"{root} has split folders {present} but no train/ folder")
    held = next((d for d in ("test", "val") if d in present), None)
    return "train", held


def _pair_by_name(a_dir, b_dir):
    """``[(a_file, b_file)]`` for the images of two folders, matched by relative name without
    extension; ``ValueError`` naming the unpaired or ambiguous files."""
    def stems(folder):
        out = {}
        for f in list_image_files(folder)[0]:
            key = os.path.splitext(os.path.relpath(f, folder))[0]
            if key in out:
                raise ValueError(f"{out[key]} and {f} have the same name: the pair of {key!r} "
                                 "is ambiguous")
            out[key] = f
        return out

    a, b = stems(a_dir), stems(b_dir)
    lone = [(a[k], b_dir) for k in sorted(set(a) - set(b))] + \
           [(b[k], a_dir) for k in sorted(set(b) - set(a))]
    if lone:
        shown = "; ".join(f"{f} has no image of the same name in {other}"
                          for f, other in lone[:5])
        raise ValueError(f"{len(lone)} unpaired file(s): {shown}"
                         + (" ..." if len(lone) > 5 else "")
                         + ". A/ and B/ must hold the same file names")
    return [(a[k], b[k]) for k in sorted(a)]


def pair_files(path, *, heldout_fraction: float = 0.1, seed: int = 0):
    """``(layout, {"train": pairs, "test": pairs}, held-out description)`` of a pair folder
    (module docs); a pair is ``(a_file, b_file)`` (``b_file`` is ``None`` for the
    ``"side_by_side"`` layout, ``"ab"`` otherwise)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ValueError(f"pair folder not found: {path}" if not os.path.exists(path)
                         else f"not a folder: {path}")
    a_dir, b_dir = os.path.join(path, "A"), os.path.join(path, "B")
    ab = os.path.isdir(a_dir) or os.path.isdir(b_dir)
    if ab and not (os.path.isdir(a_dir) and os.path.isdir(b_dir)):
        raise ValueError(f"{path} has {'A/' if os.path.isdir(a_dir) else 'B/'} but not "
                         f"{'B/' if os.path.isdir(a_dir) else 'A/'}: paired folders need both")

    def read(sub):
        join = lambda root: os.path.join(root, sub) if sub else root  # noqa: E731
        if not ab:
            return [(f, None) for f in list_image_files(join(path))[0]]
        a_sub, b_sub = join(a_dir), join(b_dir)
        if not os.path.isdir(b_sub):
            raise ValueError(f"{a_sub} has no counterpart {b_sub}")
        return _pair_by_name(a_sub, b_sub)

    train, held = _split_folders(a_dir if ab else path)
    layout = "ab" if ab else "side_by_side"
    if held is not None:
        return layout, {"train": read(train), "test": read(held)}, f"the {held}/ folder"
    items, where = read(train), os.path.join(path, train) if train else path
    return (layout,) + _hold_out(items, heldout_fraction, seed, where)


def _sizes_and_modes(files, validate):
    if validate == "none":
        from PIL import Image

        out = []
        for f in files:
            with Image.open(f) as im:
                out.append((im.size, im.mode))
        return [o[0] for o in out], [o[1] for o in out]
    return validate_images(files, validate)


def _one_size(files, sizes, what):
    distinct = sorted(set(sizes))
    if len(distinct) > 1:
        first = sizes[0]
        odd = next(f for f, s in zip(files, sizes) if s != first)
        raise ValueError(f"{what} have {len(distinct)} different sizes (W x H): {files[0]} is "
                         f"{first[0]}x{first[1]} but {odd} is "
                         f"{sizes[files.index(odd)][0]}x{sizes[files.index(odd)][1]}; pass "
                         "image_size to resize them")
    return distinct[0][1], distinct[0][0]  # (H, W)


def _to_channels(img, c):
    if c == 3:
        return img
    gray = tf.image.rgb_to_grayscale(tf.cast(img, tf.float32))
    return tf.cast(tf.clip_by_value(tf.round(gray), 0.0, 255.0), tf.uint8)


def _decode(filename):
    img = tf.io.decode_image(tf.io.read_file(filename), channels=3, dtype=tf.uint8,
                             expand_animations=False)
    img.set_shape([None, None, 3])
    return img


def _plan_sizes(native_s, native_t, image_size, source_size, where):
    """``(source (h, w), target (H, W), resize?)`` after the optional resize."""
    size = P.normalize_image_size(image_size)
    if size is None:
        if source_size is not None:
            raise ValueError("source_size needs image_size (the targets' size)")
        size_factor(native_s, native_t, where)
        return tuple(native_s), tuple(native_t), False
    if source_size is None:
        f = native_t[0] // max(1, native_s[0]) if native_s != native_t else 1
        f = f if f in (2, 4) and tuple(native_t) == (f * native_s[0], f * native_s[1]) else 1
        source_size = (size[0] // f, size[1] // f)
    src = P.normalize_image_size(source_size)
    size_factor(src, size, f"{where} (image_size {size}, source_size {src})")
    return src, size, True


def _finish(elements, *, num_examples, batch_size, shuffle, seed, deterministic, cache,
            crop, flip, shuffle_buffer=None):
    """cache -> seeded shuffle -> joint crop/flip -> batch (drop_remainder) -> [-1, 1]."""
    if cache is True:
        elements = elements.cache()
    elif cache:
        elements = elements.cache(str(cache))
    s_spec, t_spec = elements.element_spec
    if shuffle:
        nbytes = int(np.prod(s_spec.shape) + np.prod(t_spec.shape))
        buf = (P.default_shuffle_buffer(num_examples, nbytes) if shuffle_buffer is None
               else int(shuffle_buffer))
        elements = elements.shuffle(buf, seed=seed, reshuffle_each_iteration=True)
    elements = augment_pairs(elements, crop=crop, flip=flip, seed=seed,
                             deterministic=deterministic)
    shapes = [tuple(int(v) for v in e.shape) for e in elements.element_spec]
    ds = elements.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda s, t: (P.scale_to_unit(s, 0.0, 255.0), P.scale_to_unit(t, 0.0, 255.0)),
                num_parallel_calls=P.AUTOTUNE, deterministic=deterministic)
    ds = ds.prefetch(P.AUTOTUNE).with_options(P.pipeline_options(deterministic))
    return ds, shapes


def _folder_elements(path, split, *, direction, image_size, source_size, channels,
                     heldout_fraction, seed, validate, deterministic=True):
    """``(uint8 pair dataset, number of pairs, description)`` of a pair folder."""
    _check_choice(direction, DIRECTIONS, "direction")
    _check_choice(validate, ("full", "quick", "none"), "validate")
    _check_choice(split, SPLITS, "split")
    layout, by_split, heldout = pair_files(path, heldout_fraction=heldout_fraction, seed=seed)
    items = by_split[split]
    if not items:
        raise ValueError(f"{os.fspath(path)} has no held-out pairs: add a test/ or val/ "
                         "folder or pass heldout_fraction > 0")
    # Every file of both splits is checked now: a corrupt held-out image is named before
    # training, not when the first triptych is drawn.
    everything = [f for part in by_split.values() for it in part for f in it if f is not None]
    sizes, modes = _sizes_and_modes(everything, validate)
    size_of, mode_of = dict(zip(everything, sizes)), dict(zip(everything, modes))
    half = layout == "side_by_side"
    if half:
        for f in everything:
            if size_of[f][0] % 2:
                raise ValueError(f"{f} is {size_of[f][0]}x{size_of[f][1]} (W x H): a "
                                 "side-by-side A|B image needs an even width (two halves of "
                                 "equal width)")

    def sides(pairs):  # (source files, target files)
        a, b = [p[0] for p in pairs], [p[0] if half else p[1] for p in pairs]
        return (b, a) if direction == "BtoA" and not half else (a, b)

    a_files, b_files = sides(items)
    where = f"pairs in {os.fspath(path)}"

    def native(fs, half, what):
        hw = [(s[0] // 2, s[1]) if half else s for s in (size_of[f] for f in fs)]
        if image_size is not None:
            return hw[0][1], hw[0][0]
        return _one_size(fs, hw, f"the {what} ({where})")

    if not half and image_size is None:  # name the first pair whose sides do not match
        for a, b in zip(a_files, b_files):
            size_factor(size_of[a][::-1], size_of[b][::-1], f"source {a} with target {b}")
    native_s, native_t = native(a_files, half, "sources"), native(b_files, half, "targets")
    src_hw, tgt_hw, resize = _plan_sizes(native_s, native_t, image_size, source_size, where)
    cs, ct = _channels(channels)
    detect = lambda fs: 1 if all(mode_of[f] in _GRAY_MODES for f in fs) else 3  # noqa: E731
    all_s, all_t = sides(by_split["train"] + by_split["test"])  # one choice for both splits
    cs, ct = cs or detect(all_s), ct or detect(all_t)
    s_shape, t_shape = src_hw + (cs,), tgt_hw + (ct,)
    swap = direction == "BtoA"

    def prepare(img, hw, c, shape):
        if resize:
            img = P.resize_uint8(img, hw)
        return tf.ensure_shape(_to_channels(img, c), shape)

    def load(a_file, b_file):
        if half:
            img = _decode(a_file)
            w = tf.shape(img)[1] // 2
            left, right = img[:, :w], img[:, w:2 * w]
            a_img, b_img = (right, left) if swap else (left, right)
        else:
            a_img, b_img = _decode(a_file), _decode(b_file)
        return prepare(a_img, src_hw, cs, s_shape), prepare(b_img, tgt_hw, ct, t_shape)

    ds = tf.data.Dataset.from_tensor_slices((tf.constant(a_files), tf.constant(b_files)))
    ds = ds.map(load, num_parallel_calls=P.AUTOTUNE, deterministic=deterministic)
    return ds, len(items), {"layout": layout, "heldout": heldout}


def from_pair_folder(path, *, direction: str = "AtoB", split: str = "train", image_size=None,
                     source_size=None, channels=None, crop=None, flip: bool = False,
                     heldout_fraction: float = 0.1, batch_size: int = 32,
                     shuffle: bool = True, seed: int = 0, deterministic: bool = True,
                     cache=True, shuffle_buffer=None, validate: str = "full"):
    """``(source, target)`` batches from a folder of pairs (layouts in the module docs).

    Args:
      path: the folder (``A/`` + ``B/``, or side-by-side images; optional split folders).
      direction: ``"AtoB"`` (A is the source) or ``"BtoA"``.
      split: ``"train"`` or ``"test"`` (the held-out pairs).
      image_size, source_size: resize targets / sources (module docs); ``None`` keeps sizes.
      channels: 1, 3, ``(source, target)`` or ``None`` (1 where every image is grayscale).
      crop, flip: random crops (the target's size) and horizontal flips, identical on both
        sides (:func:`tfgan_app.data.paired.augment_pairs`).
      heldout_fraction: held out when there are no split folders (module docs).
      batch_size, shuffle, seed, deterministic, cache, shuffle_buffer: as every source.
      validate: ``"full"``, ``"quick"`` or ``"none"`` (as :func:`from_directory`).

    Raises:
      ValueError: missing or empty folder, corrupt or unpaired files (named), an odd width
        for side-by-side images, sizes that differ or do not match between the sides.
    """
    batch_size = P.check_batch_size(batch_size)
    elements, n, found = _folder_elements(
        path, split, direction=direction, image_size=image_size, source_size=source_size,
        channels=channels, heldout_fraction=heldout_fraction, seed=seed, validate=validate,
        deterministic=deterministic)
    P.check_enough(n, batch_size, f"the {split} pairs in {os.fspath(path)}")
    ds, (s_shape, t_shape) = _finish(elements, num_examples=n, batch_size=batch_size,
                                     shuffle=shuffle, seed=seed, deterministic=deterministic,
                                     cache=cache, crop=crop, flip=flip,
                                     shuffle_buffer=shuffle_buffer)
    reader = {"kind": "folder", "path": os.path.abspath(path), "direction": direction,
              "image_size": image_size, "source_size": source_size, "channels": channels,
              "crop": crop, "heldout_fraction": heldout_fraction, "seed": seed,
              "validate": validate}
    info = P.make_info(name=f"pairs-folder:{os.fspath(path)}", source="pairs-folder",
                       sample_shape=t_shape, num_examples=n, batch_size=batch_size,
                       with_labels=False, seed=seed, paired=True, source_shape=list(s_shape),
                       split=split, path=os.path.abspath(path), direction=direction,
                       layout=found["layout"], heldout=found["heldout"], reader=reader)
    return P.attach(ds, info)


def _tfds_keys(features, source_key, target_key, name):
    import tensorflow_datasets as tfds

    images = [k for k in features.keys() if isinstance(features[k], tfds.features.Image)]
    if source_key is None and target_key is None:
        for s, t in KNOWN_TFDS_KEYS:
            if s in images and t in images:
                source_key, target_key = s, t
    for key, what in ((source_key, "source_key"), (target_key, "target_key")):
        if key is None or key not in images:
            raise ValueError(f"TFDS dataset {name!r}: {what} must name one of its image "
                             f"features {images}, got {key!r}")
    return source_key, target_key


def _tfds_elements(name, split, *, source_key, target_key, image_size, source_size,
                   data_dir, download, deterministic=True):
    from tfgan_app.data.tfds_source import prepared_builder

    builder = prepared_builder(name, data_dir, download)
    feats = builder.info.features
    sk, tk = _tfds_keys(feats, source_key, target_key, name)
    (sh, sw, cs), (th, tw, ct) = feats[sk].shape, feats[tk].shape
    if image_size is None and None in (sh, sw, th, tw):
        raise ValueError(f"TFDS dataset {name!r} has variable image sizes ({sk}: "
                         f"{(sh, sw, cs)}, {tk}: {(th, tw, ct)}); pass image_size (and "
                         "source_size for super-resolution)")
    fixed = None not in (sh, sw, th, tw)
    src_hw, tgt_hw, resize = _plan_sizes((sh, sw) if fixed else (1, 1),
                                         (th, tw) if fixed else (1, 1), image_size,
                                         source_size, f"TFDS {name!r}")
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except Exception as e:
        raise ValueError(f"could not read split {split!r} of TFDS dataset {name!r}: {e}") from e
    n = int(ds.cardinality().numpy())
    s_shape, t_shape = tuple(src_hw) + (int(cs),), tuple(tgt_hw) + (int(ct),)

    def prepare(img, hw, shape):
        if img.dtype != tf.uint8:
            img = tf.image.convert_image_dtype(img, tf.uint8, saturate=True)
        return tf.ensure_shape(P.resize_uint8(img, hw) if resize else img, shape)

    ds = ds.map(lambda ex: (prepare(ex[sk], src_hw, s_shape), prepare(ex[tk], tgt_hw, t_shape)),
                num_parallel_calls=P.AUTOTUNE, deterministic=deterministic)
    return ds, (n if n >= 0 else None), builder, (sk, tk)


def from_tfds_pairs(name: str, *, source_key=None, target_key=None, split: str = "train",
                    heldout_split=None, image_size=None, source_size=None, crop=None,
                    flip: bool = False, batch_size: int = 32, shuffle: bool = True,
                    seed: int = 0, deterministic: bool = True, cache=True, data_dir=None,
                    download: bool = True, shuffle_buffer=None):
    """``(source, target)`` batches from a TFDS dataset with two image features (module
    docs); ``heldout_split`` (default ``test``, else ``validation``) gives the held-out
    pairs. Other arguments as :func:`from_pair_folder` and :func:`tfgan_app.data.from_tfds`.
    """
    batch_size = P.check_batch_size(batch_size)
    elements, n, builder, (sk, tk) = _tfds_elements(
        name, split, source_key=source_key, target_key=target_key, image_size=image_size,
        source_size=source_size, data_dir=data_dir, download=download,
        deterministic=deterministic)
    P.check_enough(n, batch_size, f"TFDS {name!r} split {split!r}")
    if heldout_split is None:
        known = list(builder.info.splits.keys())
        heldout_split = "validation" if "test" not in known and "validation" in known \
            else "test"
    ds, (s_shape, t_shape) = _finish(elements, num_examples=n, batch_size=batch_size,
                                     shuffle=shuffle, seed=seed, deterministic=deterministic,
                                     cache=cache, crop=crop, flip=flip,
                                     shuffle_buffer=shuffle_buffer)
    reader = {"kind": "tfds", "name": name, "source_key": sk, "target_key": tk,
              "split": heldout_split, "image_size": image_size, "source_size": source_size,
              "crop": crop, "data_dir": None if data_dir is None else str(data_dir)}
    info = P.make_info(name=f"pairs-tfds:{name}", source="pairs-tfds", sample_shape=t_shape,
                       num_examples=n, batch_size=batch_size, with_labels=False, seed=seed,
                       paired=True, source_shape=list(s_shape), split=split, tfds_name=name,
                       source_key=sk, target_key=tk,
                       heldout=f"the {heldout_split!r} split", reader=reader)
    return P.attach(ds, info)


def _collect(elements, n):
    limit = HELDOUT_LIMIT if n is None else min(int(n), HELDOUT_LIMIT)
    got = list(elements.take(limit).batch(256).as_numpy_iterator())
    if not got:
        raise ValueError("no held-out pairs to read")
    s, t = (np.concatenate([g[i] for g in got]).astype(np.float32) / 127.5 - 1.0
            for i in (0, 1))
    return s, t


def heldout_from_info(info: dict, n: int | None = None):
    """``(sources, targets)`` float32 in ``[-1, 1]``: the first ``n`` (at most
    :data:`HELDOUT_LIMIT`) held-out pairs of a dataset made here, described by its ``info``
    (``info["reader"]``); cut centrally to the training ``crop``."""
    r = dict(info["reader"])
    if r.get("kind") == "folder":
        elements, _, _ = _folder_elements(
            r["path"], "test", direction=r["direction"], image_size=r["image_size"],
            source_size=r["source_size"], channels=r["channels"],
            heldout_fraction=r["heldout_fraction"], seed=int(r["seed"] or 0),
            # checked in full when the training data was built; structure only here
            validate="none" if r.get("validate") == "none" else "quick")
    elif r.get("kind") == "tfds":
        elements = _tfds_elements(r["name"], r["split"], source_key=r["source_key"],
                                  target_key=r["target_key"], image_size=r["image_size"],
                                  source_size=r["source_size"], data_dir=r["data_dir"],
                                  download=False)[0]
    else:
        raise ValueError(f"unknown paired reader {r.get('kind')!r} in the data description")
    sources, targets = _collect(elements, n)
    return center_crop_pairs(sources, targets, r.get("crop"))
