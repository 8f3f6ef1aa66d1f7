"""Image folders: ``from_directory``.

Layout: either images anywhere under ``path`` (unlabelled), or one sub-folder per class
(``path/<class>/**/image.png``): class ids are the sorted sub-folder names' positions.
Files with extensions ``.png .jpg .jpeg .bmp`` (any case) are images; other files and
hidden entries (names starting with ``.``) are ignored.

Every image is checked with PIL when the dataset is built (``validate="full"`` decodes all
pixels; ``"quick"`` only checks structure and checksums with ``Image.verify``; ``"none"``
skips), and unreadable files are reported together, by path, in one ``ValueError`` -- not
half-way through an epoch.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from tfgan_app.data import _pipeline as P

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
_PIL_FORMATS = {"PNG", "JPEG", "MPO", "BMP", "DIB"}
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}
VALIDATE_MODES = ("full", "quick", "none")


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _images_under(root: str):
    """Sorted image paths under ``root`` (recursive), skipping hidden entries."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for f in sorted(filenames):
            if not _is_hidden(f) and f.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(dirpath, f))
    return found


def list_image_files(path, with_labels: bool = False):
    """``(files, labels or None, class_names or None)`` for an image folder.

    Class sub-folders are the non-hidden immediate sub-directories of ``path`` (sorted by
    name); with them, ``class_names`` is that list. ``with_labels=True`` requires them and
    requires every image to be inside one.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"image folder not found: {path}")
    if not os.path.isdir(path):
        raise ValueError(f"not a folder: {path}")
    entries = sorted(e for e in os.listdir(path) if not _is_hidden(e))
    subdirs = [e for e in entries if os.path.isdir(os.path.join(path, e))]
    files = _images_under(path)
    if not files:
        others = sum(len(fs) for _, _, fs in os.walk(path))
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {path}"
                         + (f" ({others} other files ignored)" if others else " (empty)"))
    if not subdirs:
        if with_labels:
            raise ValueError(f"with_labels=True but {path} has no class sub-folders; put each "
                             "class's images in path/<class_name>/")
        return files, None, None
    class_names = subdirs
    index = {c: i for i, c in enumerate(class_names)}
    labels = []
    loose = []
    for f in files:
        top = os.path.relpath(f, path).split(os.sep)[0]
        if top in index and top != os.path.relpath(f, path):
            labels.append(index[top])
        else:
            loose.append(f)
            labels.append(-1)
    if with_labels and loose:
        raise ValueError(f"with_labels=True but {len(loose)} image(s) in {path} are not in a "
                         f"class sub-folder, e.g. {loose[:3]}")
    return files, np.asarray(labels, dtype=np.int32), class_names


def _check_one(path: str, mode: str):
    """``(size (W, H), pil_mode, None)`` or ``(None, None, error message)``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            fmt, size, pmode = im.format, im.size, im.mode
            if fmt not in _PIL_FORMATS:
                return None, None, f"unsupported format {fmt} (TensorFlow decodes PNG, " \
                                   "JPEG, BMP)"
            if mode == "quick":
                im.verify()
            else:
                im.load()
        return size, pmode, None
    except Exception as e:  # PIL raises many types for broken files; we report them all.
        return None, None, f"{type(e).__name__}: {e}"


def validate_images(files, mode: str = "full"):
    """Open every file with PIL; return ``(sizes [(W, H)], modes)``; raise naming bad files.

    ``mode``: ``"full"`` (decode pixels: catches truncated data) or ``"quick"``
    (``Image.verify``). Runs on a thread pool.
    """
    if mode not in ("full", "quick"):
        raise ValueError(f"validate must be one of {VALIDATE_MODES}, got {mode!r}")
    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda f: _check_one(f, mode), files))
    bad = [(f, r[2]) for f, r in zip(files, results) if r[2] is not None]
    if bad:
        shown = "\n".join(f"  {f}: {msg}" for f, msg in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise ValueError(f"{len(bad)} unreadable image file(s):\n{shown}{more}")
    return [r[0] for r in results], [r[1] for r in results]


def _bmp_to_gray(raw):
    rgb = tf.cast(tf.io.decode_bmp(raw, channels=3), tf.float32)
    gray = tf.tensordot(rgb, tf.constant([0.2989, 0.5870, 0.1140]), axes=[[2], [0]])
    return tf.cast(tf.clip_by_value(tf.round(gray), 0.0, 255.0), tf.uint8)[..., None]


def from_directory(path, *, image_size=None, with_labels: bool = False, channels=None,
                   center_crop=False, batch_size: int = P.DEFAULT_BATCH_SIZE,
                   shuffle: bool = True, seed: int = 0, cache=True, deterministic: bool = True,
                   shuffle_buffer=None, validate: str = "full"):
    """A ``tf.data`` pipeline over a folder of images (PNG/JPEG/BMP), any sizes.

    Args:
      path: the folder. Class sub-folders optional (see module docs).
      image_size: ``None`` (all images must then share one size), an int or ``(H, W)``:
        every image is resized to it (bilinear, antialiased; aspect ratio not kept unless
        ``center_crop``).
      with_labels: yield ``(image, int32 label)``; labels are the positions of the sorted
        class sub-folder names (``ds.info["class_names"]``). Needs class sub-folders.
      channels: 1 or 3; default: 1 if every image is grayscale, else 3 (alpha dropped).
      center_crop: crop the largest central square (``True``) or a central ``s x s`` square
        (int) before resizing.
      batch_size: global batch size (last partial batch dropped).
      shuffle, seed, deterministic, shuffle_buffer: see :mod:`tfgan_app.data._pipeline`.
      cache: ``True`` caches the decoded, resized ``uint8`` images in memory after the first
        epoch; a string caches to that file; ``False`` decodes every epoch.
      validate: ``"full"``, ``"quick"`` or ``"none"`` (see module docs).

    Returns:
      ``tf.data.Dataset`` of ``float32 [batch_size, H, W, C]`` in ``[-1, 1]`` (or
      ``(images, int32 [batch_size])``) with ``ds.info`` (``path``, ``class_names``).

    Raises:
      ValueError: missing/empty folder, unreadable images (listed by path), mixed sizes
        without ``image_size``, labels requested without class sub-folders, too few images.
    """
    batch_size = P.check_batch_size(batch_size)
    size = P.normalize_image_size(image_size)
    if validate not in VALIDATE_MODES:
        raise ValueError(f"validate must be one of {VALIDATE_MODES}, got {validate!r}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
    files, labels, class_names = list_image_files(path, with_labels)
    P.check_enough(len(files), batch_size, f"folder {os.fspath(path)}")
    if validate != "none":
        sizes, modes = validate_images(files, validate)
    else:
        sizes, modes = None, None
    if channels is None:
        if modes is None:
            from PIL import Image

            with Image.open(files[0]) as im:
                modes = [im.mode]
        channels = 1 if all(m in _GRAY_MODES for m in modes) else 3
    if size is None and not center_crop:
        if sizes is None:
            from PIL import Image

            with Image.open(files[0]) as im:
                sizes = [im.size]
        distinct = sorted(set(sizes))
        if len(distinct) > 1:
            raise ValueError(f"images in {os.fspath(path)} have {len(distinct)} different "
                             f"sizes (W, H), e.g. {distinct[:4]}; pass image_size=(H, W) to "
                             "resize them")
        out_hw = (distinct[0][1], distinct[0][0])
    elif size is None:
        raise ValueError("center_crop needs image_size (crops differ in size otherwise)")
    else:
        out_hw = size
    shape = (out_hw[0], out_hw[1], channels)

    def load(filename):
        raw = tf.io.read_file(filename)
        if channels == 1:
            # TF's BMP decoder has no 1-channel mode: decode RGB, then luminance (rounded,
            # so gray BMPs keep their exact values).
            img = tf.cond(tf.strings.substr(raw, 0, 2) == "BM",
                          lambda: _bmp_to_gray(raw),
                          lambda: tf.io.decode_image(raw, channels=1, dtype=tf.uint8,
                                                     expand_animations=False))
        else:
            img = tf.io.decode_image(raw, channels=channels, dtype=tf.uint8,
                                     expand_animations=False)
        img.set_shape([None, None, channels])
        if size is not None:
            img = P.resize_uint8(img, size, center_crop=center_crop)
        return tf.ensure_shape(img, shape)

    files_t = tf.constant(files)
    if with_labels:
        ds = tf.data.Dataset.from_tensor_slices((files_t, tf.constant(labels)))
        ds = ds.map(lambda f, y: (load(f), y), num_parallel_calls=P.AUTOTUNE,
                    deterministic=deterministic)
    else:
        ds = tf.data.Dataset.from_tensor_slices(files_t)
        ds = ds.map(load, num_parallel_calls=P.AUTOTUNE, deterministic=deterministic)
    ds = P.element_pipeline(ds, batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache,
                            deterministic=deterministic, shuffle_buffer=shuffle_buffer,
                            num_examples=len(files), element_bytes=int(np.prod(shape)),
                            with_labels=with_labels)
    info = P.make_info(name=f"folder:{os.fspath(path)}", source="folder", sample_shape=shape,
                       num_examples=len(files), batch_size=batch_size, with_labels=with_labels,
                       num_classes=None if class_names is None else len(class_names),
                       class_names=class_names, seed=seed, path=os.path.abspath(path))
    return P.attach(ds, info)
