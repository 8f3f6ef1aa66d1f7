"""Image-to-image networks: pix2pix's U-Net and PatchGAN (Isola et al. 2017) and an SRGAN-style
residual super-resolution generator (Ledig et al. 2017).

* :func:`unet_generator` -- ``source float32 [B, H, W, Cs]`` -> ``image float32 [B, H, W, C]``
  in ``[-1, 1]``: ``depth`` stride-2 ``Conv2D(4x4)`` blocks down (``norm`` + LeakyReLU 0.2; no
  norm on the first), the same number of stride-2 ``Conv2DTranspose`` blocks up (``norm``,
  dropout 0.5 on the first three as in pix2pix, ReLU) with skip connections concatenating the
  matching encoder activation, ``tanh`` output. ``H`` and ``W`` must be divisible by
  ``2**depth``; filters double from ``base_filters`` up to ``max_filters``.
* :func:`patchgan_discriminator` -- ``[image [B, H, W, C], source [B, h, w, Cs]]`` -> logits
  ``[B, H/2^n, W/2^n, 1]``, one per patch (the source is resized bilinearly to ``H x W`` when
  the sizes differ, as for super-resolution, and concatenated with the image). ``n`` stride-2
  convolutions then two stride-1 ones; the receptive field of each logit is 16, 34 or 70
  pixels for ``n`` = 1, 2, 3 (pix2pix's ``n_layers``). The image comes first so that
  :class:`~tfgan_app.translation.TranslationGAN` calls it as ``GANModel`` calls a conditional
  discriminator (``[x, conditioning]``).
* :func:`srgan_generator` -- ``[B, H/f, W/f, Cs]`` -> ``[B, H, W, C]``: a 9x9 conv and PReLU,
  ``num_blocks`` residual blocks (conv-BN-PReLU-conv-BN + skip; ``norm="none"`` drops the
  BN, as EDSR, Lim et al. 2017), a conv-BN with a long skip, ``log2(f)`` sub-pixel upsamplings
  (conv to 4x filters, :class:`DepthToSpace` by 2 (``tf.nn.depth_to_space``), PReLU) and a
  9x9 ``tanh`` conv; ``f`` is 2 or 4. With ``input_skip=True`` the last conv is a linear 3x3
  one, initialised to zero, whose residual is added to the bicubic upsampling of the input and
  clipped to ``[-1, 1]`` (:class:`ClipValues`): the untrained network is bicubic upsampling.

Normalisation: ``"batch"``, ``"instance"`` (``GroupNormalization(groups=-1)``: one group per
channel) or ``"none"``; the discriminator may wrap its convolutions in spectral normalisation.
Weights ``N(0, 0.02)`` as in pix2pix. Outputs are ``float32`` under mixed precision.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

NORMS = ("batch", "instance", "none")
RECEPTIVE_FIELDS = {16: 1, 34: 2, 70: 3}


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _norm(kind, name):
    if kind not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    if kind == "instance":
        return keras.layers.GroupNormalization(groups=-1, name=name)
    return None


def _shape(shape, what):
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{what} must be (H, W, C) with positive sizes, got {shape}")
    return shape


def unet_depth(height: int, width: int, depth: int | None = None, max_depth: int = 8) -> int:
    """The U-Net depth: ``depth`` checked against the size, or the largest ``<= max_depth``
    that divides both sides (pix2pix's 256x256 has 8)."""
    if depth is None:
        depth = 0
        while depth < max_depth and height % 2 ** (depth + 1) == 0 \
                and width % 2 ** (depth + 1) == 0:
            depth += 1
    depth = int(depth)
    if depth < 1 or height % 2 ** depth or width % 2 ** depth:
        raise ValueError(f"a U-Net of depth {depth} needs H and W divisible by 2**{depth} = "
                         f"{2 ** depth}; got {height}x{width}")
    return depth


def unet_generator(image_shape, source_channels: int | None = None, *, depth: int | None = None,
                   base_filters: int = 64, max_filters: int = 512, dropout: float = 0.5,
                   norm: str = "batch", name: str = "unet_generator") -> keras.Model:
    """pix2pix's U-Net: ``source [B, H, W, source_channels]`` -> ``[B, H, W, C]`` in [-1, 1].

    Args:
      image_shape: ``(H, W, C)`` of the output (and of the source, but for its channels).
      source_channels: channels of the source image (default ``C``).
      depth: down/up blocks (default: as deep as the size allows, at most 8).
      base_filters, max_filters: filters of the first block and the cap.
      dropout: on the first three decoder blocks (pix2pix's noise); 0 disables.
      norm: ``"batch"``, ``"instance"`` or ``"none"``.
    """
    h, w, c = _shape(image_shape, "image_shape")
    depth = unet_depth(h, w, depth)
    src = keras.Input((h, w, int(source_channels or c)), name="source")
    x, skips = src, []
    for i in range(depth):
        f = min(base_filters * 2 ** i, max_filters)
        x = keras.layers.Conv2D(f, 4, strides=2, padding="same", use_bias=False,
                                kernel_initializer=_init(), name=f"down{i + 1}_conv")(x)
        layer = _norm(norm, f"down{i + 1}_norm") if i else None
        x = layer(x) if layer is not None else x
        x = keras.layers.LeakyReLU(0.2, name=f"down{i + 1}_lrelu")(x)
        skips.append(x)
    for j, skip in enumerate(reversed(skips[:-1])):
        f = min(base_filters * 2 ** (depth - 2 - j), max_filters)
        x = keras.layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=_init(), name=f"up{j + 1}_conv")(x)
        layer = _norm(norm, f"up{j + 1}_norm")
        x = layer(x) if layer is not None else x
        if dropout and j < 3:
            x = keras.layers.Dropout(dropout, name=f"up{j + 1}_dropout")(x)
        x = keras.layers.ReLU(name=f"up{j + 1}_relu")(x)
        x = keras.layers.Concatenate(name=f"up{j + 1}_skip")([x, skip])
    out = keras.layers.Conv2DTranspose(c, 4, strides=2, padding="same", activation="tanh",
                                       kernel_initializer=_init(), dtype="float32",
                                       name="out")(x)
    return keras.Model(src, out, name=name)


def patchgan_discriminator(image_shape, source_shape=None, *, receptive_field: int = 70,
                           base_filters: int = 64, norm: str = "batch",
                           spectral_norm: bool = False, conditional: bool = True,
                           name: str = "patchgan_discriminator") -> keras.Model:
    """PatchGAN: ``[image [B, H, W, C], source [B, h, w, Cs]]`` -> patch logits ``[B, P, Q, 1]``.

    Args:
      image_shape: ``(H, W, C)`` of the judged image.
      source_shape: ``(h, w, Cs)`` of the source (default ``image_shape``); resized to
        ``H x W`` (bilinear) when it differs.
      receptive_field: 16, 34 or 70 pixels per logit.
      base_filters: filters of the first convolution (doubling, capped at 8x).
      norm: ``"batch"``, ``"instance"`` or ``"none"`` (never on the first layer).
      spectral_norm: wrap every convolution in ``keras.layers.SpectralNormalization``.
      conditional: ``False``: judge the image alone, ``image [B, H, W, C]`` -> logits
        (CycleGAN's discriminators); ``source_shape`` is then ignored.
    """
    h, w, c = _shape(image_shape, "image_shape")
    source_shape = _shape(source_shape or image_shape, "source_shape")
    if receptive_field not in RECEPTIVE_FIELDS:
        raise ValueError(f"receptive_field must be one of {sorted(RECEPTIVE_FIELDS)}, got "
                         f"{receptive_field!r}")
    n = RECEPTIVE_FIELDS[receptive_field]
    if h % 2 ** n or w % 2 ** n:
        raise ValueError(f"a {receptive_field}-pixel PatchGAN needs H and W divisible by "
                         f"{2 ** n}; got {h}x{w}")

    def conv(f, stride, layer_name, **kw):
        layer = keras.layers.Conv2D(f, 4, strides=stride, padding="same",
                                    kernel_initializer=_init(), name=layer_name, **kw)
        return keras.layers.SpectralNormalization(layer, name=f"{layer_name}_sn") \
            if spectral_norm else layer

    image = keras.Input((h, w, c), name="image")
    source = keras.Input(source_shape, name="source")
    src = source if source_shape[:2] == (h, w) else keras.layers.Resizing(
        h, w, interpolation="bilinear", name="source_resize")(source)
    x = keras.layers.Concatenate(name="pair")([image, src]) if conditional else image
    for i in range(n + 1):
        f = base_filters * min(2 ** i, 8)
        x = conv(f, 2 if i < n else 1, f"conv{i + 1}", use_bias=i == 0)(x)
        layer = _norm(norm, f"norm{i + 1}") if i else None
        x = layer(x) if layer is not None else x
        x = keras.layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
    logits = conv(1, 1, "logits", dtype="float32")(x)
    return keras.Model([image, source] if conditional else image, logits, name=name)


@keras.saving.register_keras_serializable(package="tfgan_app")
class DepthToSpace(keras.layers.Layer):
    """Sub-pixel rearrangement ``tf.nn.depth_to_space(x, block_size)``:
    ``[B, H, W, C * b^2]`` -> ``[B, H * b, W * b, C]``."""

    def __init__(self, block_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, x):
        return tf.nn.depth_to_space(x, self.block_size)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        k = self.block_size
        return (b, None if h is None else h * k, None if w is None else w * k, c // (k * k))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="tfgan_app")
class ClipValues(keras.layers.Layer):
    """``clip(x, lo, hi)``: keeps an output that adds a residual to an image in range."""

    def __init__(self, lo: float = -1.0, hi: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.lo, self.hi = float(lo), float(hi)

    def call(self, x):
        return keras.ops.clip(x, self.lo, self.hi)

    def get_config(self):
        return {**super().get_config(), "lo": self.lo, "hi": self.hi}


def srgan_generator(image_shape, source_shape, *, num_blocks: int = 8, filters: int = 64,
                    input_skip: bool = False, norm: str = "batch",
                    name: str = "srgan_generator") -> keras.Model:
    """SRGAN-style residual generator: ``[B, H/f, W/f, Cs]`` -> ``[B, H, W, C]`` in [-1, 1].

    Args:
      image_shape: ``(H, W, C)`` of the high-resolution output.
      source_shape: ``(H/f, W/f, Cs)`` of the low-resolution input; ``f`` must be 2 or 4.
      num_blocks: residual blocks (SRGAN has 16). filters: their width (SRGAN: 64).
      input_skip: the network learns a residual over the bicubic upsampling of the input
        (as VDSR, Kim et al. 2016): ``clip(bicubic(source) + conv3x3(x), -1, 1)`` instead of
        ``tanh(conv9x9(x))``, the 3x3 kernel starting at zero; needs ``Cs == C``. A 9x9 one
        of random start trained with Adam at 1e-3 shrank the features under it to nothing and
        stayed at bicubic (benchmarks/results/translation.md).
      norm: ``"batch"`` (SRGAN) or ``"none"`` (EDSR) in the residual trunk.
    """
    h, w, c = _shape(image_shape, "image_shape")
    sh, sw, sc = _shape(source_shape, "source_shape")
    factor = h // sh
    if factor not in (2, 4) or sh * factor != h or sw * factor != w:
        raise ValueError(f"super-resolution by 2 or 4 only: the source {sh}x{sw} must be the "
                         f"output {h}x{w} divided by 2 or 4")
    src = keras.Input((sh, sw, sc), name="source")

    def prelu(n):
        return keras.layers.PReLU(shared_axes=[1, 2], name=n)

    if norm not in ("batch", "none"):
        raise ValueError(f"the SRGAN generator's norm must be 'batch' or 'none', got {norm!r}")

    def bn(n):
        return (lambda t: t) if norm == "none" else keras.layers.BatchNormalization(name=n)

    x = keras.layers.Conv2D(filters, 9, padding="same", name="head")(src)
    x = head = prelu("head_prelu")(x)
    for i in range(num_blocks):
        y = keras.layers.Conv2D(filters, 3, padding="same", name=f"res{i + 1}_conv1")(x)
        y = bn(f"res{i + 1}_bn1")(y)
        y = prelu(f"res{i + 1}_prelu")(y)
        y = keras.layers.Conv2D(filters, 3, padding="same", name=f"res{i + 1}_conv2")(y)
        y = bn(f"res{i + 1}_bn2")(y)
        x = keras.layers.Add(name=f"res{i + 1}_add")([x, y])
    x = keras.layers.Conv2D(filters, 3, padding="same", name="trunk_conv")(x)
    x = bn("trunk_bn")(x)
    x = keras.layers.Add(name="trunk_skip")([head, x])
    for i in range(int(math.log2(factor))):
        x = keras.layers.Conv2D(filters * 4, 3, padding="same", name=f"up{i + 1}_conv")(x)
        x = DepthToSpace(2, name=f"up{i + 1}_shuffle")(x)
        x = prelu(f"up{i + 1}_prelu")(x)
    if not input_skip:
        out = keras.layers.Conv2D(c, 9, padding="same", activation="tanh", dtype="float32",
                                  name="out")(x)
        return keras.Model(src, out, name=name)
    if sc != c:
        raise ValueError(f"input_skip adds the upsampled source to the output: the source's "
                         f"channels ({sc}) must equal the output's ({c})")
    res = keras.layers.Conv2D(c, 3, padding="same", kernel_initializer="zeros", dtype="float32",
                              name="out")(x)
    up = keras.layers.Resizing(h, w, interpolation="bicubic", dtype="float32",
                               name="input_upsample")(src)
    out = keras.layers.Add(dtype="float32", name="input_skip")([up, res])
    return keras.Model(src, ClipValues(dtype="float32", name="clip")(out), name=name)
