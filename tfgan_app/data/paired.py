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

Pairs read from disk or TFDS (a folder of side-by-side A|B images, folders ``A/`` and ``B/``
paired by file name, a TFDS dataset with two image features) are in
:mod:`tfgan_app.data.paired_sources`. Every paired source may apply :func:`augment_pairs`:
random crops and horizontal flips applied identically to both sides (arrays and derived pairs
also quarter turns and translations).

Offline defaults (:func:`offline_images`): scikit-learn's digits upsampled bilinearly
(``"digits"``; ``train``/``test`` split as :func:`tfgan_app.data.digits`), and random patches of
real photos shipped with the dependencies (``"photos"``, :data:`PHOTOS`: scikit-learn's two
sample photos and scikit-image's five natural colour photos; patches for ``train`` come from
the left 70% of each photo, ``test`` patches from the right 30%, so held-out patches are never
seen).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfgan_app.data import _pipeline as P

TASKS = ("superres", "inpaint", "colorize", "edges")
MASKS = ("center", "random_boxes")
OFFLINE = ("digits", "photos")
PHOTO_TRAIN_FRACTION = 0.7
#: The photos of ``"photos"``: scikit-learn's two JPEG sample photos and scikit-image's five
#: natural colour photos (lossless PNG but the rocket; the stereo pair's right view, the
#: microscopy, retina and telescope images are left out). Two photos
#: alone were too little: a super-resolution network learnt next to nothing from them that
#: held for unseen columns (benchmarks/results/translation.md).
PHOTOS = (("sklearn", "china.jpg"), ("sklearn", "flower.jpg"), ("skimage", "astronaut"),
          ("skimage", "chelsea"), ("skimage", "coffee"), ("skimage", "motorcycle_left"),
          ("skimage", "rocket"))


def _images(x, what):
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{what} must be [N, H, W, C] with C = 1 or 3, got shape {x.shape}")
    if x.size and (x.min() < -1.001 or x.max() > 1.001):
        raise ValueError(f"{what} must be in [-1, 1], got [{x.min():.3g}, {x.max():.3g}]")
    return x


def size_factor(source_shape, target_shape, what: str = "pairs") -> int:
    """The integer ``f`` with target ``H, W`` = ``f`` x source ``h, w`` (1: same size; 2 or 4
    for super-resolution); ``ValueError`` naming both shapes otherwise."""
    (h, w), (H, W) = tuple(source_shape[:2]), tuple(target_shape[:2])
    f = H // h if h and w else 0
    if not f or H != f * h or W != f * w:
        raise ValueError(f"{what}: source size {h}x{w} and target size {H}x{W} (H x W) do not "
                         "match; a target must have the source's size or an integer multiple "
                         "of it (super-resolution)")
    return int(f)


def _crop_size(crop, target_shape, factor):
    if crop is None or crop is False:
        return None
    ch, cw = P.normalize_image_size(crop)
    H, W = target_shape[:2]
    if ch > H or cw > W or ch % factor or cw % factor:
        raise ValueError(f"crop {ch}x{cw} must fit the targets ({H}x{W}) and be divisible by "
                         f"the target/source size factor {factor}")
    return ch, cw


def _crop_pair(source, target, crop, factor, offsets):
    """Crop ``target`` to ``crop`` at ``offsets`` (in source pixels) and the source at the
    same place (scaled by ``factor``)."""
    ch, cw = crop
    oy, ox = offsets
    cs, ct = source.shape[-1], target.shape[-1]
    source = tf.slice(source, tf.stack([oy, ox, 0]), [ch // factor, cw // factor, cs])
    target = tf.slice(target, tf.stack([oy * factor, ox * factor, 0]), [ch, cw, ct])
    return source, target


def center_crop_pairs(sources, targets, crop):
    """The central ``crop`` (of the target; the source's matching part) of aligned arrays:
    how held-out pairs are cut when training crops at random."""
    factor = size_factor(sources.shape[1:], targets.shape[1:])
    crop = _crop_size(crop, targets.shape[1:], factor)
    if crop is None:
        return sources, targets
    (h, w), (ch, cw) = sources.shape[1:3], crop
    oy, ox = (h - ch // factor) // 2, (w - cw // factor) // 2
    return (sources[:, oy:oy + ch // factor, ox:ox + cw // factor],
            targets[:, oy * factor:oy * factor + ch, ox * factor:ox * factor + cw])


def _shift_pair(source, target, shift, factor, key):
    """Both images moved by the same random whole-pixel offset, each of ``-shift..shift``
    source pixels (``factor`` times that in the target) down and right, the size kept: padded
    by mirroring their borders (``SYMMETRIC``), then cut back at the drawn offset."""
    H, W = target.shape[:2]
    k = tf.random.experimental.stateless_split(key, 2)
    oy = tf.random.stateless_uniform([], k[0], 0, 2 * shift + 1, tf.int32)
    ox = tf.random.stateless_uniform([], k[1], 0, 2 * shift + 1, tf.int32)
    pad = lambda x, p: tf.pad(x, [[p, p], [p, p], [0, 0]], mode="SYMMETRIC")  # noqa: E731
    return _crop_pair(pad(source, shift), pad(target, shift * factor), (H, W), factor,
                      (oy, ox))


def _check_shift(shift, source_shape) -> int:
    h, w = source_shape[:2]
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) or not (
            0 <= shift <= min(h, w)):
        raise ValueError(f"shift must be a whole number of source pixels from 0 to "
                         f"{min(h, w)} (the source's smaller side), got {shift!r}")
    return int(shift)


def augment_pairs(ds, *, crop=None, flip: bool = False, rotate: bool = False, shift: int = 0,
                  seed: int = 0, deterministic: bool = True):
    """Random crops (``crop``: the target's ``(h, w)`` or an int; the source is cut at the same
    place, scaled by the size factor), horizontal flips (``flip``: probability 1/2),
    quarter turns (``rotate``: 0, 90, 180 or 270 degrees, equally likely; square images only;
    with ``flip`` the eight symmetries of the square) and translations (``shift``: up to that
    many source pixels in each direction, the size kept, borders mirrored; applied before the
    crop), the same for both sides of each ``(source, target)`` element of ``ds`` (unbatched,
    static shapes). Seeded: the same ``seed`` gives the same draws; each epoch draws new ones.
    For digits, whose mirror image is another glyph, ``shift`` is the augmentation to use."""
    s_spec, t_spec = ds.element_spec
    factor = size_factor(s_spec.shape, t_spec.shape)
    crop = _crop_size(crop, t_spec.shape, factor)
    shift = _check_shift(shift, s_spec.shape)
    if crop is None and not flip and not rotate and not shift:
        return ds
    h, w = s_spec.shape[:2]
    out_h, out_w = crop or t_spec.shape[:2]
    if rotate and out_h != out_w:
        raise ValueError(f"rotate turns images by quarter turns: it needs square images (or a "
                         f"square crop), got {out_h}x{out_w}")
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def one(pair, key):
        source, target = pair
        k = tf.random.experimental.stateless_split(key, 4)
        if shift:  # its own stream: the crops, flips and turns of a seed stay as they were
            source, target = _shift_pair(source, target, shift, factor,
                                         tf.random.experimental.stateless_fold_in(key, 4))
        if crop is not None:
            oy = tf.random.stateless_uniform([], k[0], 0, h - crop[0] // factor + 1, tf.int32)
            ox = tf.random.stateless_uniform([], k[1], 0, w - crop[1] // factor + 1, tf.int32)
            source, target = _crop_pair(source, target, crop, factor, (oy, ox))
        if flip:
            mirror = tf.random.stateless_uniform([], k[2]) < 0.5
            source = tf.cond(mirror, lambda: tf.reverse(source, [1]), lambda: source)
            target = tf.cond(mirror, lambda: tf.reverse(target, [1]), lambda: target)
        if rotate:
            turns = tf.random.stateless_uniform([], k[3], 0, 4, tf.int32)
            source = tf.ensure_shape(tf.image.rot90(source, turns), source.shape)
            target = tf.ensure_shape(tf.image.rot90(target, turns), target.shape)
        return source, target

    return tf.data.Dataset.zip((ds, seeds)).map(one, num_parallel_calls=P.AUTOTUNE,
                                                deterministic=deterministic)


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


#: A photo patch is kept only if its texture (mean absolute difference between neighbouring
#: grey levels, horizontally plus vertically, in [-1, 1] units) reaches this: random crops of
#: the sample photos are mostly sky, wall or blurred background, on which bicubic upsampling
#: is already near-perfect, so super-resolution measured on them says nothing
#: (benchmarks/results/translation.md).
PHOTO_MIN_TEXTURE = 0.04


def photo_texture(patches) -> np.ndarray:
    """``float32 [N]``: the texture of RGB ``patches [N, S, S, 3]`` in ``[-1, 1]`` (see
    :data:`PHOTO_MIN_TEXTURE`)."""
    g = np.asarray(patches, np.float32).mean(-1)
    return (np.abs(np.diff(g, axis=1)).mean((1, 2))
            + np.abs(np.diff(g, axis=2)).mean((1, 2))).astype(np.float32)


def load_photos() -> list[np.ndarray]:
    """The :data:`PHOTOS`, ``uint8 [H, W, 3]`` each, in that order."""
    from sklearn.datasets import load_sample_images

    try:
        import skimage.data
    except ImportError as e:
        raise ImportError("the offline 'photos' need scikit-image's sample photos: "
                          "pip install scikit-image (a dependency of tfgan_app)") from e
    sk = dict(zip(("china.jpg", "flower.jpg"), load_sample_images().images))
    own = {"motorcycle_left": lambda: skimage.data.stereo_motorcycle()[0]}
    return [np.asarray(sk[name] if pkg == "sklearn" else
                       own.get(name, getattr(skimage.data, name, None))(), np.uint8)
            for pkg, name in PHOTOS]


def offline_images(name: str, split: str = "train", *, image_size: int = 32,
                   num_patches: int | None = None, seed: int = 0) -> np.ndarray:
    """Real images shipped with the dependencies, ``float32 [N, S, S, C]`` in ``[-1, 1]``.

    ``"digits"``: scikit-learn's 8x8 digits (``split`` as :func:`tfgan_app.data.digits`)
    upsampled to ``image_size`` (bilinear), 1 channel. ``"photos"``: ``num_patches`` textured
    ``image_size`` RGB crops of the :data:`PHOTOS` (default 2,048 for ``train``, 256 for
    ``test``): ``train`` crops lie in the left 70% of each photo's columns, ``test`` crops in
    the right 30% (never seen in training); candidates are drawn from the photos in turn and
    kept only when their texture reaches :data:`PHOTO_MIN_TEXTURE`, so the
    first ``n`` patches of a seed and split are the same whatever ``num_patches`` is.
    """
    if name == "digits":
        from tfgan_app.data.digits import load_digits_arrays

        x, _ = load_digits_arrays(split)
        x = tf.image.resize(x, [image_size, image_size], method="bilinear").numpy()
        return np.clip(x, -1.0, 1.0).astype(np.float32)
    if name == "photos":
        if split not in ("train", "test"):
            raise ValueError(f"photos split must be 'train' or 'test', got {split!r}")
        n = int(num_patches or (2048 if split == "train" else 256))
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        photos = [p.astype(np.float32) / 127.5 - 1.0 for p in load_photos()]
        kept, found, drawn = [], 0, 0
        while found < n:
            if drawn > 200 * n + 10_000:
                raise ValueError(f"only {found} of {n} {image_size}x{image_size} photo patches "
                                 f"reach texture {PHOTO_MIN_TEXTURE} in the {split} region")
            batch = np.empty((256, image_size, image_size, 3), np.float32)
            for i in range(len(batch)):
                img = photos[(drawn + i) % len(photos)]
                cut = int(img.shape[1] * PHOTO_TRAIN_FRACTION)
                lo, hi = (0, cut - image_size) if split == "train" else (
                    cut, img.shape[1] - image_size)
                y0 = rng.integers(0, img.shape[0] - image_size + 1)
                x0 = rng.integers(lo, hi + 1)
                batch[i] = img[y0:y0 + image_size, x0:x0 + image_size]
            drawn += len(batch)
            batch = batch[photo_texture(batch) >= PHOTO_MIN_TEXTURE]
            kept.append(batch)
            found += len(batch)
        return np.concatenate(kept)[:n]
    raise ValueError(f"unknown offline image source {name!r}; valid: {', '.join(OFFLINE)}")


def from_pairs(sources, targets, *, batch_size: int = 32, shuffle: bool = True, seed: int = 0,
               deterministic: bool = True, crop=None, flip: bool = False,
               rotate: bool = False, shift: int = 0, name: str = "pairs",
               source: str = "arrays", **extra):
    """A ``tf.data`` pipeline of ``(source, target)`` batches from two aligned arrays.

    Args:
      sources: ``float32 [N, h, w, Cs]`` in ``[-1, 1]``.
      targets: ``float32 [N, H, W, C]`` in ``[-1, 1]``; ``H, W`` equal to ``h, w`` or an
        integer multiple of them (super-resolution).
      batch_size, shuffle, seed, deterministic: as every source.
      crop, flip, rotate, shift: random crops, flips, quarter turns and translations, the
        same on both sides (:func:`augment_pairs`).

    Returns:
      the dataset (``ds.info`` describes it; ``data_shape`` is the target's shape, after
      ``crop``).
    """
    s, t = _images(sources, "sources"), _images(targets, "targets")
    if len(s) != len(t):
        raise ValueError(f"{len(s)} sources but {len(t)} targets: pairs must align")
    size_factor(s.shape[1:], t.shape[1:], "the arrays")
    batch_size = P.check_batch_size(batch_size)
    P.check_enough(len(t), batch_size, "the pairs")
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(s), tf.constant(t))).cache()
    if shuffle:
        ds = ds.shuffle(len(t), seed=seed, reshuffle_each_iteration=True)
    ds = augment_pairs(ds, crop=crop, flip=flip, rotate=rotate, shift=shift, seed=seed,
                       deterministic=deterministic)
    s_shape, t_shape = (tuple(int(v) for v in e.shape) for e in ds.element_spec)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(P.IN_MEMORY_PREFETCH)
    ds = ds.with_options(P.pipeline_options(deterministic, in_memory=True))
    info = P.make_info(name=name, source=source, sample_shape=t_shape,
                       num_examples=len(t), batch_size=batch_size, with_labels=False,
                       seed=seed, paired=True, source_shape=list(s_shape),
                       crop=None if crop is None else list(P.normalize_image_size(crop)),
                       flip=bool(flip), rotate=bool(rotate), shift=int(shift), **extra)
    return P.attach(ds, info)


def derived_pairs(images: str, task: dict, split: str = "train", *, batch_size: int = 32,
                  image_size: int = 32, shuffle: bool = True, seed: int = 0,
                  num_patches: int | None = None, crop=None, flip: bool = False,
                  rotate: bool = False, shift: int = 0):
    """``(dataset, info)`` of pairs derived by ``task`` (``{"name": TASK, **options}``) from
    the offline images ``images`` (:func:`offline_images`); ``crop``, ``flip``, ``rotate`` and
    ``shift`` as :func:`from_pairs` (held-out pairs are then cut centrally to ``crop``)."""
    task = dict(task)
    task_name = task.pop("name", None)
    targets = offline_images(images, split, image_size=image_size, num_patches=num_patches,
                             seed=seed)
    sources = derive(task_name, targets, seed=seed, **task)
    ds = from_pairs(sources, targets, batch_size=batch_size, shuffle=shuffle, seed=seed,
                    crop=crop, flip=bool(flip), rotate=bool(rotate), shift=shift,
                    name=f"{images}-{task_name}", source=images,
                    split=split, task={"name": task_name, **task}, image_size=image_size)
    return ds, ds.info


def heldout_pairs(info: dict, n: int | None = None):
    """``(sources, targets)``: the held-out pairs of the paired dataset described by ``info``
    (the first ``n``, or all), for pictures and the end-of-run report: for a derived dataset,
    its ``task`` applied to the ``test`` split of its offline images; for folders and TFDS,
    what :func:`tfgan_app.data.paired_sources.heldout_from_info` reads (``info["heldout"]``
    says where they come from)."""
    if info.get("reader"):
        from tfgan_app.data.paired_sources import heldout_from_info

        return heldout_from_info(info, n)
    task = info.get("task")
    if not task or info.get("source") not in OFFLINE:
        raise ValueError("held-out pairs need a dataset derived from offline images "
                         "(tfgan_app.data.paired.derived_pairs) or read by "
                         "tfgan_app.data.paired_sources (folders, TFDS); got "
                         f"{info.get('name')!r}")
    task = dict(task)
    patches = None if n is None else max(int(n), 8)
    targets = offline_images(info["source"], "test", image_size=int(info["image_size"]),
                             num_patches=patches, seed=int(info.get("seed") or 0))[:n]
    sources = derive(task.pop("name"), targets, seed=int(info.get("seed") or 0), **task)
    return center_crop_pairs(sources, targets, info.get("crop"))


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
