"""CycleGAN's ResNet generator (Zhu et al. 2017, appendix 7.2; Johnson et al. 2016).

:func:`resnet_generator` -- ``image float32 [B, H, W, Cin]`` -> ``image float32 [B, H, W, C]``
in ``[-1, 1]``, the paper's ``c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3``:

* ``c7s1-k``: reflection padding 3, a 7x7 convolution with ``k`` filters, stride 1, instance
  normalisation, ReLU (the last one: no normalisation, ``tanh``);
* ``dk``: a 3x3 convolution with ``k`` filters, stride 2 (``same`` padding), instance norm, ReLU;
* ``Rk``: a residual block of two 3x3 convolutions with ``k`` filters, each after a reflection
  padding of 1 and followed by instance norm (ReLU between them), added to its input;
* ``uk``: a 3x3 fractionally-strided convolution (``Conv2DTranspose``, stride 2), instance
  norm, ReLU.

The paper uses 6 blocks at 128x128 and 9 at 256x256 with ``base_filters=64``; for small images
(digits at 32x32) fewer blocks, narrower layers and ``downsamplings=1`` fit. ``H`` and ``W``
must be divisible by ``2**downsamplings``. Instance normalisation is
``GroupNormalization(groups=-1)`` (one group per channel), as in
:mod:`tfgan_app.builders.pix2pix`; weights ``N(0, 0.02)``. The output is ``float32`` under mixed
precision.

CycleGAN's discriminators are pix2pix's 70x70 PatchGAN judging one image:
``patchgan_discriminator(shape, conditional=False, norm="instance")`` (builder name
``patchgan`` with ``"conditional": false``).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgan_app.builders.pix2pix import _init, _norm, _shape


@keras.saving.register_keras_serializable(package="tfgan_app")
class ReflectionPadding2D(keras.layers.Layer):
    """``tf.pad(x, ..., mode="REFLECT")`` of ``padding`` pixels on each side of H and W:
    ``[B, H, W, C]`` -> ``[B, H + 2p, W + 2p, C]`` (needs ``p < H`` and ``p < W``)."""

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        grow = 2 * self.padding
        return (b, None if h is None else h + grow, None if w is None else w + grow, c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def resnet_generator(image_shape, source_channels: int | None = None, *, num_blocks: int = 9,
                     base_filters: int = 64, downsamplings: int = 2, norm: str = "instance",
                     name: str = "resnet_generator") -> keras.Model:
    """CycleGAN's ResNet generator: ``[B, H, W, source_channels]`` -> ``[B, H, W, C]``.

    Args:
      image_shape: ``(H, W, C)`` of the output (and of the input, but for its channels).
      source_channels: channels of the input image (default ``C``).
      num_blocks: residual blocks (the paper: 6 at 128x128, 9 at 256x256).
      base_filters: filters of the first ``c7s1`` layer; each downsampling doubles them.
      downsamplings: stride-2 convolutions down (and transposed ones up); the paper has 2.
      norm: ``"instance"`` (the paper), ``"batch"`` or ``"none"``.

    Returns:
      a ``keras.Model``; outputs in ``[-1, 1]`` (``tanh``).
    """
    h, w, c = _shape(image_shape, "image_shape")
    num_blocks, downsamplings = int(num_blocks), int(downsamplings)
    if num_blocks < 0 or downsamplings < 0 or int(base_filters) < 1:
        raise ValueError(f"num_blocks and downsamplings must be >= 0 and base_filters >= 1; got "
                         f"{num_blocks}, {downsamplings}, {base_filters}")
    if h % 2 ** downsamplings or w % 2 ** downsamplings:
        raise ValueError(f"{downsamplings} downsamplings need H and W divisible by "
                         f"{2 ** downsamplings}; got {h}x{w}")
    if min(h, w) // 2 ** downsamplings <= 1 and num_blocks:
        raise ValueError(f"{h}x{w} is too small for {downsamplings} downsamplings before "
                         "reflection-padded residual blocks (need at least 2x2 there)")
    if min(h, w) <= 3:
        raise ValueError(f"the 7x7 reflection-padded layers need H and W > 3, got {h}x{w}")

    def block(x, layer, label, relu=True):
        x = layer(x)
        n = _norm(norm, f"{label}_norm")
        x = n(x) if n is not None else x
        return keras.layers.ReLU(name=f"{label}_relu")(x) if relu else x

    def conv(f, k, label, stride=1, padding="valid"):
        return keras.layers.Conv2D(f, k, strides=stride, padding=padding, use_bias=norm == "none",
                                   kernel_initializer=_init(), name=label)

    src = keras.Input((h, w, int(source_channels or c)), name="source")
    x = ReflectionPadding2D(3, name="c7s1_pad")(src)
    x = block(x, conv(base_filters, 7, "c7s1_conv"), "c7s1")
    f = base_filters
    for i in range(downsamplings):
        f *= 2
        x = block(x, conv(f, 3, f"d{i + 1}_conv", 2, "same"), f"d{i + 1}")
    for i in range(num_blocks):
        y = ReflectionPadding2D(1, name=f"r{i + 1}_pad1")(x)
        y = block(y, conv(f, 3, f"r{i + 1}_conv1"), f"r{i + 1}a")
        y = ReflectionPadding2D(1, name=f"r{i + 1}_pad2")(y)
        y = block(y, conv(f, 3, f"r{i + 1}_conv2"), f"r{i + 1}b", relu=False)
        x = keras.layers.Add(name=f"r{i + 1}_add")([x, y])
    for i in range(downsamplings):
        f //= 2
        up = keras.layers.Conv2DTranspose(max(f, 1), 3, strides=2, padding="same",
                                          use_bias=norm == "none", kernel_initializer=_init(),
                                          name=f"u{i + 1}_conv")
        x = block(x, up, f"u{i + 1}")
    x = ReflectionPadding2D(3, name="out_pad")(x)
    out = keras.layers.Conv2D(c, 7, activation="tanh", kernel_initializer=_init(),
                              dtype="float32", name="out")(x)
    return keras.Model(src, out, name=name)
