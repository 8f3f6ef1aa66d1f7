"""Sliced Wasserstein distance between Laplacian-pyramid patch distributions (Karras et al.
2018) on TF-GAN's pyramid, patch draw and projections
(``tensorflow_gan/python/eval/sliced_wasserstein.py``, loaded through :mod:`tfgan_app._tfgan`).

Where it departs from TF-GAN's ``sliced_wasserstein_distance``, and why (README,
"Evaluation"): flat patches become zero vectors instead of 0/0 (NaN on MNIST-like
backgrounds); levels are labelled with their real side length; the distance is averaged over
4 draws of random projections by default and their spread reported; Karras et al.'s
convention (descriptors normalised per channel, distances x1e3) is available.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SWD_FLAT_STD", "sliced_wasserstein_distance", "swd_descriptors"]

#: A patch (``normalize="patch"``) or a channel (``"channel"``) whose standard deviation is
#: below this many grey levels (of 255) is flat: it becomes a zero vector instead of 0/0.
SWD_FLAT_STD = 1e-2
#: TF-GAN's projection count per random draw (``random_projection_dim``: 7 * 7 * 3).
_SWD_PROJECTIONS = 7 * 7 * 3


def _images_for_swd(x, name):
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be images [N, H, W, C] with C in (1, 3); got shape "
                         f"{np.shape(x)}")
    if arr.shape[1] != arr.shape[2]:
        raise ValueError(f"{name} must be square (H == W) for the sliced Wasserstein distance; "
                         f"got {arr.shape[1]}x{arr.shape[2]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    # TF-GAN's code was written for [0, 255] images (so is SWD_FLAT_STD, in grey levels).
    return (np.clip(arr, -1.0, 1.0) + 1.0) * 127.5


def swd_descriptors(patches, normalize: str = "patch", flat_std: float = SWD_FLAT_STD):
    """Normalised patch descriptors ``float32 [P, h*w*c]`` from patches ``[P, h, w, c]``.

    ``"patch"``: each patch minus its mean, divided by its standard deviation (TF-GAN's
    ``_normalize_patches``); ``"channel"``: each channel minus its mean over all patches,
    divided by its standard deviation over all patches (Karras et al.'s
    ``finalize_descriptors``). A patch or channel whose standard deviation is below
    ``flat_std`` is flat and becomes zeros (TF-GAN divides 0 by 0 there: NaN).
    """
    import tensorflow as tf

    if normalize not in ("patch", "channel"):
        raise ValueError(f"normalize must be 'patch' or 'channel'; got {normalize!r}")
    patches = tf.convert_to_tensor(patches, tf.float32)
    axes = [1, 2, 3] if normalize == "patch" else [0, 1, 2]
    mean, variance = tf.nn.moments(x=patches, axes=axes, keepdims=True)
    std = tf.sqrt(variance)
    flat = std < flat_std
    out = tf.where(flat, 0.0, (patches - mean) / tf.where(flat, 1.0, std))
    return tf.reshape(out, [tf.shape(out)[0], -1])


def _projected_distances(a, b, draws: int) -> list:
    """TF-GAN's ``_sliced_wasserstein`` one draw at a time: per draw, 147 random unit
    directions from ``tf.random.normal`` (the same draws, in the same order), then the mean
    absolute difference of the sorted projections of ``a`` and ``b`` -- sorted by NumPy
    (several times faster on CPU than TensorFlow's ``top_k`` over all rows)."""
    import tensorflow as tf

    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    out = []
    for _ in range(draws):
        proj = tf.random.normal([a.shape[1], _SWD_PROJECTIONS])
        proj = (proj * tf.math.rsqrt(tf.reduce_sum(tf.square(proj), axis=0, keepdims=True))).numpy()
        pa, pb = np.sort(a @ proj, axis=0), np.sort(b @ proj, axis=0)
        out.append(float(np.mean(np.abs(pa - pb), dtype=np.float64)))
    return out


def sliced_wasserstein_distance(real_images, fake_images, resolution_min: int = 16,
                                patches_per_image: int = 64, patch_size: int = 7,
                                random_sampling_count: int = 4, seed: int | None = 0,
                                normalize: str = "patch", scale: float = 1.0) -> dict:
    """Sliced Wasserstein distance between Laplacian-pyramid patch distributions (Karras et al.
    2018), with TF-GAN's pyramid, patch draw and projections (``sliced_wasserstein.py``; the
    sorting is NumPy's).

    Grayscale images are tiled to 3 channels (TF-GAN requires ``C == 3``) and mapped from
    ``[-1, 1]`` to ``[0, 255]``. Levels: TF-GAN's count (full resolution, halved while at
    least ``min(resolution_min, H)`` in powers of two), each labelled with its real side
    length (28x28 images: one level, 28). ``seed`` seeds NumPy's and TensorFlow's global
    generators (TF-GAN draws patches and projections from them).

    Conventions (``docs``: README, "Evaluation"): with the defaults the number is TF-GAN's
    -- patches normalised one by one, distance not scaled -- except that flat patches (e.g.
    MNIST's background; standard deviation below :data:`SWD_FLAT_STD` grey levels) become
    zero vectors where TF-GAN returns NaN, and 4 random draws of 147 projections are
    averaged (TF-GAN's default: 1 draw). Karras et al.'s code normalises each channel over
    all patches of a level and reports ``SWDx1e3``: ``normalize="channel", scale=1e3,
    patches_per_image=128`` on 8,192 images follow their protocol (their 4 x 128
    projections: ``random_sampling_count=4`` gives 4 x 147).

    Args:
      real_images, fake_images: ``float [N, H, W, C]`` (or ``[N, H, W]``), values in
        ``[-1, 1]``, ``H == W``, same image shape for both, ``H >= patch_size``. TF-GAN needs
        equal counts: the larger set is randomly subsampled to the smaller one's size.
      resolution_min, patches_per_image, patch_size: TF-GAN's.
      random_sampling_count: random draws of 147 projections each, averaged; their spread
        gives ``swd_stderr``.
      seed: ``int`` or ``None`` (no seeding).
      normalize: ``"patch"`` (TF-GAN) or ``"channel"`` (Karras et al.); see
        :func:`swd_descriptors`.
      scale: factor on every distance: 1 (TF-GAN's number) or 1e3 (Karras et al.'s units).

    Returns:
      ``{"swd": mean over levels of the real-vs-fake distance, "swd_stderr": its standard
      error over the random projection draws (NaN with one draw; the patch draw adds
      spread of its own), "swd_real": mean over levels of TF-GAN's real-vs-real reference
      (two independent patch draws from the real images: the noise level of the estimate),
      "levels": [{"resolution", "real", "fake"} per level, finest first], "flat_patches":
      {"real", "fake"}: fraction of the finest level's patches that are flat}``, distances
      times ``scale``.

    Raises:
      ValueError: bad shapes/values/options.
    """
    import tensorflow as tf

    from tfgan_app import _tfgan

    real = _images_for_swd(real_images, "real_images")
    fake = _images_for_swd(fake_images, "fake_images")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real_images and fake_images must have the same image shape; got "
                         f"{real.shape[1:]} and {fake.shape[1:]}")
    if real.shape[1] < patch_size:
        raise ValueError(f"images ({real.shape[1]}x{real.shape[1]}) are smaller than "
                         f"patch_size={patch_size}")
    if not isinstance(random_sampling_count, (int, np.integer)) or random_sampling_count < 1:
        raise ValueError(f"random_sampling_count must be a positive integer; got "
                         f"{random_sampling_count!r}")
    if normalize not in ("patch", "channel"):
        raise ValueError(f"normalize must be 'patch' or 'channel'; got {normalize!r}")
    if (isinstance(scale, bool) or not isinstance(scale, (int, float, np.number))
            or not 0 < scale < math.inf):
        raise ValueError(f"scale must be a positive number (1: TF-GAN's units, 1e3: Karras et "
                         f"al.'s); got {scale!r}")
    if seed is not None:
        np.random.seed(seed)
        tf.random.set_seed(seed)
    n = min(len(real), len(fake))  # TF-GAN needs equal batch sizes: random subsets of n
    if len(real) > n:
        real = real[np.sort(np.random.permutation(len(real))[:n])]
    if len(fake) > n:
        fake = fake[np.sort(np.random.permutation(len(fake))[:n])]
    sw = _tfgan.sliced_wasserstein()
    full = real.shape[1]
    num_levels = int(np.log2(full)) - int(np.log2(min(resolution_min, full))) + 1

    def draw(level):
        return sw._batch_to_patches(level, patches_per_image, patch_size)

    def flat(patches):  # fraction of flat patches, whatever the normalisation
        return float(np.mean(np.asarray(tf.math.reduce_std(patches, axis=[1, 2, 3])) < SWD_FLAT_STD))

    # TF-GAN's order of random draws: patches (real, test per level; then fake), projections.
    real_test = [(draw(lv), draw(lv)) for lv in sw.laplacian_pyramid(tf.constant(real), num_levels)]
    fakes = [draw(lv) for lv in sw.laplacian_pyramid(tf.constant(fake), num_levels)]
    per_draw, levels, size = [], [], full
    for (p_real, p_test), p_fake in zip(real_test, fakes):
        a, b, c = (swd_descriptors(p, normalize) for p in (p_real, p_test, p_fake))
        d_real = [d * scale for d in _projected_distances(a, b, random_sampling_count)]
        d_fake = [d * scale for d in _projected_distances(a, c, random_sampling_count)]
        per_draw.append(d_fake)
        levels.append({"resolution": size, "real": float(np.mean(d_real)),
                       "fake": float(np.mean(d_fake))})
        size = (size + 1) // 2  # TF-GAN's pyr_down keeps every second row and column
    draws = np.mean(per_draw, axis=0)  # the SWD of each projection draw
    stderr = (float(np.std(draws, ddof=1) / math.sqrt(len(draws))) if len(draws) > 1
              else float("nan"))
    return {"swd": float(np.mean([lv["fake"] for lv in levels])), "swd_stderr": stderr,
            "swd_real": float(np.mean([lv["real"] for lv in levels])), "levels": levels,
            "flat_patches": {"real": flat(real_test[0][0]), "fake": flat(fakes[0])}}
