"""Paired ``(source, target)`` image pipelines for image-to-image translation.

Same conventions as every source: ``float32`` in ``[-1, 1]``, ``[batch, H, W, C]``, seeded
shuffle reshuffled each epoch, ``drop_remainder=True``, ``ds.info`` (with ``"paired": True``
and ``"source_shape"``). A pair comes from two arrays (:func:`from_pairs`) or is *derived* from
any images by a task (:data:`TASKS`), which makes the source from the target:

* ``superres`` (``factor`` 2 or 4): bicubic, antialiased downsampling;
* ``inpaint`` (``mask="center"``: the central square of half the side; ``"random_boxes"``:
  1-3 boxes per image, fixed per image for a seed): masked pixels set to 0 (mid-grey);
* ``colorize``: RGB to grayscale (one channel);
* ``edges``: Sobel gradient magnitude of the grayscale image, scaled to ``[-1, 1]``.

Offline defaults (:func:`offline_images`): scikit-learn's digits upsampled bilinearly
(``"digits"``; ``train``/``test`` split as :func:`tfgan_app.data.digits`), and random patches of
scikit-learn's two sample photos (``"photos"``: patches for ``train`` come from the left 70%
of each photo, ``test`` patches from the right 30%, so held-out patches are never seen).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfgan_app.data import _pipeline as P

TASKS = ("superres", "inpaint", "colorize", "edges")
MASKS = ("center", "random_boxes")
OFFLINE = ("digits", "photos")
PHOTO_TRAIN_FRACTION = 0.7


def _images(x, what):
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{what} must be [N, H, W, C] with C = 1 or 3, got shape {x.shape}")
    if x.size and (x.min() < -1.001 or x.max() > 1.001):
        raise ValueError(f"{what} must be in [-1, 1], got [{x.min():.3g}, {x.max():.3g}]")
    return x


def derive(task: str, targets, *, factor: int = 4, mask: str = "center",
           seed: int = 0) -> np.ndarray:
    """The sources of ``task`` for ``targets`` (``float32 [N, H, W, C]`` in ``[-1, 1]``).

    Returns ``float32 [N, h, w, Cs]`` in ``[-1, 1]`` (see the module docstring).
    """
    t = _images(targets, "targets")
    n, h, w, c = t.shape
    if task == "superres":
        if factor not in (2, 4) or h % factor or w % factor:
            raise ValueError(f"superres factor must be 2 or 4 and divide the size {h}x{w}, "
                             f"got {factor}")
        x = tf.image.resize(t, [h // factor, w // factor], method="bicubic", antialias=True)
        return np.clip(x.numpy(), -1.0, 1.0)
    if task == "inpaint":
        if mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
        keep = np.ones((n, h, w, 1), np.float32)
        if mask == "center":
            keep[:, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0.0
        else:
            rng = np.random.default_rng(seed)
            for i in range(n):
                for _ in range(rng.integers(1, 4)):
                    bh, bw = rng.integers(h // 6 + 1, h // 3 + 2), rng.integers(w // 6 + 1,
                                                                                w // 3 + 2)
                    y0, x0 = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
                    keep[i, y0:y0 + bh, x0:x0 + bw] = 0.0
        return t * keep
    gray = t if c == 1 else tf.image.rgb_to_grayscale((t + 1.0) / 2.0).numpy() * 2.0 - 1.0
    if task == "colorize":
        if c != 3:
            raise ValueError(f"colorize needs RGB targets (3 channels), got {c}")
        return gray.astype(np.float32)
    if task == "edges":
        sob = tf.image.sobel_edges(tf.constant((gray + 1.0) / 2.0))  # [N, H, W, 1, 2]
        mag = tf.sqrt(tf.reduce_sum(tf.square(sob), axis=-1)).numpy()
        peak = np.maximum(mag.max(axis=(1, 2, 3), keepdims=True), 1e-6)
        return (mag / peak * 2.0 - 1.0).astype(np.float32)
    raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")


def offline_images(name: str, split: str = "train", *, image_size: int = 32,
                   num_patches: int | None = None, seed: int = 0) -> np.ndarray:
    """Real images shipped with the dependencies, ``float32 [N, S, S, C]`` in ``[-1, 1]``.

    ``"digits"``: scikit-learn's 8x8 digits (``split`` as :func:`tfgan_app.data.digits`)
    upsampled to ``image_size`` (bilinear), 1 channel. ``"photos"``: ``num_patches`` random
    ``image_size`` RGB crops of scikit-learn's sample photos (default 2,048 for ``train``,
    256 for ``test``), from disjoint column ranges per split.
    """
    if name == "digits":
        from tfgan_app.data.digits import load_digits_arrays

        x, _ = load_digits_arrays(split)
        x = tf.image.resize(x, [image_size, image_size], method="bilinear").numpy()
        return np.clip(x, -1.0, 1.0).astype(np.float32)
    if name == "photos":
        from sklearn.datasets import load_sample_images

        if split not in ("train", "test"):
            raise ValueError(f"photos split must be 'train' or 'test', got {split!r}")
        n = int(num_patches or (2048 if split == "train" else 256))
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        out = np.empty((n, image_size, image_size, 3), np.float32)
        photos = load_sample_images().images
        for i in range(n):
            img = photos[i % len(photos)]
            cut = int(img.shape[1] * PHOTO_TRAIN_FRACTION)
            lo, hi = (0, cut - image_size) if split == "train" else (cut, img.shape[1] - image_size)
            y0 = rng.integers(0, img.shape[0] - image_size + 1)
            x0 = rng.integers(lo, hi + 1)
            out[i] = img[y0:y0 + image_size, x0:x0 + image_size] / 127.5 - 1.0
        return out
    raise ValueError(f"unknown offline image source {name!r}; valid: {', '.join(OFFLINE)}")


def from_pairs(sources, targets, *, batch_size: int = 32, shuffle: bool = True, seed: int = 0,
               deterministic: bool = True, name: str = "pairs", source: str = "arrays",
               **extra):
    """A ``tf.data`` pipeline of ``(source, target)`` batches from two aligned arrays.

    Args:
      sources: ``float32 [N, h, w, Cs]`` in ``[-1, 1]``.
      targets: ``float32 [N, H, W, C]`` in ``[-1, 1]``.
      batch_size, shuffle, seed, deterministic: as every source.

    Returns:
      the dataset (``ds.info`` describes it; ``data_shape`` is the target's shape).
    """
    s, t = _images(sources, "sources"), _images(targets, "targets")
    if len(s) != len(t):
        raise ValueError(f"{len(s)} sources but {len(t)} targets: pairs must align")
    batch_size = P.check_batch_size(batch_size)
    P.check_enough(len(t), batch_size, "the pairs")
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(s), tf.constant(t))).cache()
    if shuffle:
        ds = ds.shuffle(len(t), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(P.IN_MEMORY_PREFETCH)
    ds = ds.with_options(P.pipeline_options(deterministic, in_memory=True))
    info = P.make_info(name=name, source=source, sample_shape=t.shape[1:],
                       num_examples=len(t), batch_size=batch_size, with_labels=False,
                       seed=seed, paired=True, source_shape=[int(v) for v in s.shape[1:]],
                       **extra)
    return P.attach(ds, info)


def derived_pairs(images: str, task: dict, split: str = "train", *, batch_size: int = 32,
                  image_size: int = 32, shuffle: bool = True, seed: int = 0,
                  num_patches: int | None = None):
    """``(dataset, info)`` of pairs derived by ``task`` (``{"name": TASK, **options}``) from
    the offline images ``images`` (:func:`offline_images`)."""
    task = dict(task)
    task_name = task.pop("name", None)
    targets = offline_images(images, split, image_size=image_size, num_patches=num_patches,
                             seed=seed)
    sources = derive(task_name, targets, seed=seed, **task)
    ds = from_pairs(sources, targets, batch_size=batch_size, shuffle=shuffle, seed=seed,
                    name=f"{images}-{task_name}", source=images, split=split,
                    task={"name": task_name, **task}, image_size=image_size)
    return ds, ds.info


def heldout_pairs(info: dict, n: int | None = None):
    """``(sources, targets)``: held-out pairs of a derived dataset described by ``info`` (its
    ``task`` applied to the ``test`` split of its offline images; the first ``n``, or all),
    for pictures and the end-of-run report."""
    task = info.get("task")
    if not task or info.get("source") not in OFFLINE:
        raise ValueError("held-out pairs need a dataset derived from offline images "
                         f"(tfgan_app.data.paired.derived_pairs); got {info.get('name')!r}")
    task = dict(task)
    patches = None if n is None else max(int(n), 8)
    targets = offline_images(info["source"], "test", image_size=int(info["image_size"]),
                             num_patches=patches, seed=int(info.get("seed") or 0))[:n]
    return derive(task.pop("name"), targets, seed=int(info.get("seed") or 0), **task), targets


def naive_translation(sources, target_shape) -> np.ndarray:
    """The input's own baseline: the source resized bicubically to the target's size (the
    masked input itself for inpainting; channels repeated or averaged to match)."""
    s = np.asarray(sources, np.float32)
    h, w, c = target_shape
    if s.shape[1:3] != (h, w):
        s = np.clip(tf.image.resize(s, [h, w], method="bicubic").numpy(), -1.0, 1.0)
    if s.shape[-1] != c:
        s = np.repeat(s.mean(-1, keepdims=True), c, axis=-1)
    return s.astype(np.float32)
