"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016), any ``H, W`` divisible by 4.

``variant="dcgan"`` (default), the paper's guidelines:

* no pooling: the generator upsamples with stride-2 ``Conv2DTranspose``, the discriminator
  downsamples with stride-2 ``Conv2D``;
* batch normalization in the generator (every layer but the output) with ``ReLU``; ``tanh``
  output in ``[-1, 1]``;
* ``LeakyReLU(0.2)`` in the discriminator; normalization there is an option (``norm``):
  ``"batch"`` (the paper's, every layer but the input), ``"layer"`` (per-sample, for
  gradient penalties such as WGAN-GP), ``"spectral"`` (spectral normalization, Miyato et al.
  2018) or ``"none"``; the discriminator returns **logits** ``[B, 1]`` (no sigmoid);
* weights ``N(0, 0.02)``; batch norm momentum 0.9 (Keras' default 0.99 makes the moving
  statistics lag behind the short trainings typical here).

Geometry: the generator starts from ``(H / 2^k, W / 2^k)`` and doubles ``k`` times; ``k`` is
the largest value ``>= 2`` such that both sides stay integers and, beyond 2, the start is at
least 4x4: 8x8 starts at 2x2 (k=2), 28x28 at 7x7 (k=2), 32x32 at 4x4 (k=3), 64x64 at 4x4
(k=4). Filters halve at each upsampling and end at ``base_filters`` before the output layer;
the discriminator mirrors this (``base_filters`` after the first conv, doubling). Override
with ``num_upsamples``.

``variant="tutorial"``: the layer sizes of the TensorFlow DCGAN tutorial (28x28x1; other
``H, W`` divisible by 4 start at ``H/4 x W/4``): G ``Dense(7*7*256, no bias)``, BN,
LeakyReLU, ``Conv2DTranspose(128, 5, s1)``, BN, LeakyReLU, ``Conv2DTranspose(64, 5, s2)``, BN,
LeakyReLU, ``Conv2DTranspose(C, 5, s2, tanh)``; D ``Conv2D(64, 5, s2)``, LeakyReLU,
``Dropout(0.3)``, ``Conv2D(128, 5, s2)``, LeakyReLU, ``Dropout(0.3)``, ``Flatten``,
``Dense(1)``. LeakyReLU keeps Keras' default slope 0.3, as in the tutorial.

All models use built-in layers only (``.keras`` save/load needs no custom objects), compile
under ``jit_compile``, and compute their outputs in ``float32`` even under a mixed
precision policy.
"""

from __future__ import annotations

import numbers

import keras

VARIANTS = ("dcgan", "tutorial")
D_NORMS = ("batch", "layer", "spectral", "none")
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


def _positive_int(v, what):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
        raise ValueError(f"{what} must be a positive integer, got {v!r}")
    return int(v)


def check_image_shape(image_shape):
    """Validate ``(H, W, C)`` for the DCGAN builders: H, W divisible by 4, C in {1, 3}."""
    try:
        shape = tuple(image_shape)
    except TypeError:
        raise ValueError(f"image_shape must be (height, width, channels), got {image_shape!r}")
    if len(shape) != 3 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                  and s > 0 for s in shape):
        raise ValueError(f"image_shape must be three positive ints (height, width, channels), "
                         f"got {image_shape!r}")
    h, w, c = (int(s) for s in shape)
    if h % 4 or w % 4:
        raise ValueError(f"DCGAN builders need height and width divisible by 4, got {h}x{w}; "
                         "resize the data (e.g. image_size=(32, 32))")
    if c not in (1, 3):
        raise ValueError(f"DCGAN builders support 1 or 3 channels, got {c}")
    return h, w, c


def num_upsamples(height: int, width: int) -> int:
    """Number of stride-2 stages ``k`` for an ``height x width`` image (see module docs)."""
    k = 2
    while (height % 2 ** (k + 1) == 0 and width % 2 ** (k + 1) == 0
           and height // 2 ** (k + 1) >= 4 and width // 2 ** (k + 1) >= 4):
        k += 1
    return k


def _resolve_k(h, w, k):
    if k is None:
        return num_upsamples(h, w)
    k = _positive_int(k, "num_upsamples")
    if h % 2 ** k or w % 2 ** k:
        raise ValueError(f"num_upsamples={k} needs height and width divisible by {2 ** k}, "
                         f"got {h}x{w}")
    return k


def _check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def generator_body(h, image_shape, *, variant="dcgan", base_filters=64, kernel_size=4,
                   num_upsamples=None, max_filters=512, prefix="g"):
    """Apply the DCGAN generator layers to a ``[B, D]`` tensor; returns ``float32 [B, H, W, C]``.

    Shared by :func:`dcgan_generator` and the conditional builders.
    """
    H, W, C = check_image_shape(image_shape)
    _check_variant(variant)
    L = keras.layers
    if variant == "tutorial":
        h0, w0 = H // 4, W // 4
        h = L.Dense(h0 * w0 * 256, use_bias=False, name=f"{prefix}_dense")(h)
        h = L.BatchNormalization(name=f"{prefix}_bn0")(h)
        h = L.LeakyReLU(name=f"{prefix}_lrelu0")(h)
        h = L.Reshape((h0, w0, 256), name=f"{prefix}_reshape")(h)
        for i, (f, s) in enumerate([(128, 1), (64, 2)], start=1):
            h = L.Conv2DTranspose(f, 5, strides=s, padding="same", use_bias=False,
                                  name=f"{prefix}_deconv{i}")(h)
            h = L.BatchNormalization(name=f"{prefix}_bn{i}")(h)
            h = L.LeakyReLU(name=f"{prefix}_lrelu{i}")(h)
        h = L.Conv2DTranspose(C, 5, strides=2, padding="same", use_bias=False,
                              name=f"{prefix}_deconv_out")(h)
        return L.Activation("tanh", dtype="float32", name=f"{prefix}_tanh")(h)

    k = _resolve_k(H, W, num_upsamples)
    base_filters = _positive_int(base_filters, "base_filters")
    kernel_size = _positive_int(kernel_size, "kernel_size")
    h0, w0 = H // 2 ** k, W // 2 ** k
    filters = [min(max_filters, base_filters * 2 ** (k - 1 - i)) for i in range(k)]
    h = L.Dense(h0 * w0 * filters[0], use_bias=False, kernel_initializer=_init(),
                name=f"{prefix}_dense")(h)
    h = L.Reshape((h0, w0, filters[0]), name=f"{prefix}_reshape")(h)
    h = L.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{prefix}_bn0")(h)
    h = L.ReLU(name=f"{prefix}_relu0")(h)
    for i, f in enumerate(filters[1:], start=1):
        h = L.Conv2DTranspose(f, kernel_size, strides=2, padding="same", use_bias=False,
                              kernel_initializer=_init(), name=f"{prefix}_deconv{i}")(h)
        h = L.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                 name=f"{prefix}_bn{i}")(h)
        h = L.ReLU(name=f"{prefix}_relu{i}")(h)
    h = L.Conv2DTranspose(C, kernel_size, strides=2, padding="same", kernel_initializer=_init(),
                          name=f"{prefix}_deconv_out")(h)
    return L.Activation("tanh", dtype="float32", name=f"{prefix}_tanh")(h)


def discriminator_features(x, image_shape, *, variant="dcgan", base_filters=64, kernel_size=4,
                           num_downsamples=None, max_filters=512, norm="batch", dropout=0.0,
                           prefix="d"):
    """Apply the DCGAN discriminator's conv stack to ``x``; returns flat features ``[B, F]``.

    Shared by :func:`dcgan_discriminator` and the conditional builders. ``image_shape`` is
    the *image's* shape (used for the geometry); ``x`` may carry extra channels.
    """
    H, W, _ = check_image_shape(image_shape)
    _check_variant(variant)
    L = keras.layers
    if variant == "tutorial":
        h = x
        for i, f in enumerate([64, 128], start=1):
            h = L.Conv2D(f, 5, strides=2, padding="same", name=f"{prefix}_conv{i}")(h)
            h = L.LeakyReLU(name=f"{prefix}_lrelu{i}")(h)
            h = L.Dropout(0.3, name=f"{prefix}_dropout{i}")(h)
        return L.Flatten(name=f"{prefix}_flatten")(h)

    if norm not in D_NORMS:
        raise ValueError(f"norm must be one of {D_NORMS}, got {norm!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    k = _resolve_k(H, W, num_downsamples)
    base_filters = _positive_int(base_filters, "base_filters")
    kernel_size = _positive_int(kernel_size, "kernel_size")
    h = x
    for i in range(k):
        f = min(max_filters, base_filters * 2 ** i)
        conv = L.Conv2D(f, kernel_size, strides=2, padding="same", kernel_initializer=_init(),
                        use_bias=(i == 0 or norm not in ("batch", "layer")),
                        name=f"{prefix}_conv{i + 1}")
        if norm == "spectral":
            h = L.SpectralNormalization(conv, name=f"{prefix}_sn{i + 1}")(h)
        else:
            h = conv(h)
        if i > 0 and norm == "batch":
            h = L.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                     name=f"{prefix}_bn{i + 1}")(h)
        elif i > 0 and norm == "layer":
            h = L.LayerNormalization(axis=[1, 2, 3], name=f"{prefix}_ln{i + 1}")(h)
        h = L.LeakyReLU(0.2, name=f"{prefix}_lrelu{i + 1}")(h)
        if dropout:
            h = L.Dropout(float(dropout), name=f"{prefix}_dropout{i + 1}")(h)
    return L.Flatten(name=f"{prefix}_flatten")(h)


def logits_layer(units, norm, name):
    """The final ``Dense(units)`` in ``float32`` (spectrally normalized when ``norm`` says so)."""
    dense = keras.layers.Dense(units, kernel_initializer=_init(), dtype="float32", name=name)
    if norm == "spectral":
        return keras.layers.SpectralNormalization(dense, dtype="float32", name=f"{name}_sn")
    return dense


def dcgan_generator(latent_dim: int, image_shape=(28, 28, 1), base_filters: int = 64, *,
                    variant: str = "dcgan", kernel_size: int = 4, num_upsamples=None,
                    max_filters: int = 512, name: str = "dcgan_generator"):
    """DCGAN generator: ``z float32 [B, latent_dim]`` -> images ``float32 [B, H, W, C]`` in ``[-1, 1]``.

    Args:
      latent_dim: size of ``z``.
      image_shape: ``(H, W, C)``, H and W divisible by 4, C in {1, 3}.
      base_filters: filters of the last hidden layer (doubling towards the input, capped at
        ``max_filters``). Ignored by ``variant="tutorial"``.
      variant: ``"dcgan"`` (Radford et al.) or ``"tutorial"`` (TensorFlow DCGAN tutorial).
      kernel_size: transposed-convolution kernel (``dcgan`` variant; 4 avoids checkerboard
        artefacts with stride 2).
      num_upsamples: override the number of stride-2 stages (module docs).
      name: model name.

    Returns:
      A functional ``keras.Model`` with input ``z`` and ``tanh`` output (``float32``).

    Raises:
      ValueError: H or W not divisible by 4, C not 1/3, bad sizes or variant.
    """
    latent_dim = _positive_int(latent_dim, "latent_dim")
    z = keras.Input((latent_dim,), name="z")
    out = generator_body(z, image_shape, variant=variant, base_filters=base_filters,
                         kernel_size=kernel_size, num_upsamples=num_upsamples,
                         max_filters=max_filters)
    return keras.Model(z, out, name=name)


def dcgan_discriminator(image_shape=(28, 28, 1), base_filters: int = 64, *,
                        variant: str = "dcgan", norm: str = "batch", dropout: float = 0.0,
                        kernel_size: int = 4, num_downsamples=None, max_filters: int = 512,
                        name: str = "dcgan_discriminator"):
    """DCGAN discriminator: images ``float32 [B, H, W, C]`` (in ``[-1, 1]``) -> logits ``float32 [B, 1]``.

    Args:
      image_shape: ``(H, W, C)``, H and W divisible by 4, C in {1, 3}.
      base_filters: filters of the first conv (doubling, capped at ``max_filters``).
      variant: ``"dcgan"`` or ``"tutorial"`` (which ignores the other options).
      norm: ``"batch"`` (paper), ``"layer"`` (use with gradient penalties), ``"spectral"``
        or ``"none"``; never on the first layer.
      dropout: dropout rate after each LeakyReLU(0.2) (0 = none).
      kernel_size, num_downsamples: convolution kernel and number of stride-2 stages.
      name: model name.

    Returns:
      A functional ``keras.Model``: input ``x``, output unnormalized logits ``[B, 1]``.
    """
    shape = check_image_shape(image_shape)
    x = keras.Input(shape, name="x")
    feats = discriminator_features(x, shape, variant=variant, base_filters=base_filters,
                                   kernel_size=kernel_size, num_downsamples=num_downsamples,
                                   max_filters=max_filters, norm=norm, dropout=dropout)
    out = logits_layer(1, norm if variant == "dcgan" else "none", "logits")(feats)
    return keras.Model(x, out, name=name)
