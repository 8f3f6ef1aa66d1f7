"""Adversarial loss pairs and discriminator penalties, by name, computed by TF-GAN.

Every pair is a :class:`GANLoss`: a generator loss and a discriminator loss, each a thin call
into TF-GAN's own ``losses_impl`` functions (loaded by :mod:`tfgan_app._tfgan`), with TF-GAN's
options exposed.

Conventions (TF-GAN's, and so ours):

* Discriminators output **logits** ``float32 [B, 1]`` (or ``[B]``), never probabilities. The
  sigmoid losses (``minimax``, ``modified``, ``relativistic``, ``acgan``) apply the sigmoid
  inside the cross-entropy; the others (``wasserstein``, ``wasserstein_hinge``,
  ``least_squares``) read the raw output as a critic score.
* ``minimax`` and ``modified`` **smooth the real labels of the discriminator loss by 0.25 by
  default** (TF-GAN's default, from Salimans et al. 2016: the real target becomes
  ``1 - 0.25/2 = 0.875`` as ``tf.compat.v1.losses.sigmoid_cross_entropy`` smooths towards 1/2).
  Pass ``label_smoothing=0.0`` for the plain loss of the original paper.
* Losses are weighted means over the batch (TF-GAN's ``SUM_BY_NONZERO_WEIGHTS``); ``real_weights``,
  ``generated_weights`` and ``weights`` broadcast against the discriminator output.

Names (``get(name, **options)``):

=====================  ==========================================================  ==================
name                   generator / discriminator (TF-GAN functions)                options
=====================  ==========================================================  ==================
``minimax``            ``minimax_generator_loss`` (saturating: G minimises           ``label_smoothing`` (D, 0.25),
                       ``log(1 - D(G(z)))``) / ``minimax_discriminator_loss``        ``generator_label_smoothing`` (0)
``modified``           ``modified_generator_loss`` (non-saturating:                 same as ``minimax``
                       G minimises ``-log D(G(z))``) / ``modified_discriminator_loss``
``wasserstein``        ``wasserstein_generator_loss`` / ``wasserstein_discriminator_loss``  --
``wasserstein_hinge``  ``wasserstein_hinge_generator_loss`` / ``..._discriminator_loss``    ``real_hinge``, ``generated_hinge`` (1, 1)
``least_squares``      ``least_squares_generator_loss`` / ``..._discriminator_loss``        ``real_label`` (1), ``fake_label`` (0)
``relativistic``       ``relativistic_generator_loss`` / ``..._discriminator_loss``         --
``acgan``              ``modified`` pair plus ``acgan_generator_loss`` /                    ``label_smoothing`` (0.25),
                       ``acgan_discriminator_loss`` on the auxiliary classifier logits      ``aux_weight`` (1), ``aux_label_smoothing`` (0)
=====================  ==========================================================  ==================

Penalties (added to the discriminator loss by :class:`tfgan_app.GANModel`):

* :func:`wasserstein_gradient_penalty` -- TF-GAN's maths (``epsilon``, ``target``,
  ``one_sided``), written for eager/``tf.function`` code (TF-GAN's version needs graph mode and a
  variable scope; see the function).
* :func:`r1_penalty` -- ``gamma/2 * E[||grad_x D(x)||^2]`` on real data (Mescheder et al. 2018).
* :func:`clip_weights` -- WGAN weight clipping of the discriminator's variables.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable

import keras
import tensorflow as tf

from tfgan_app import _tfgan

SIGMOID_LOSSES = ("minimax", "modified", "relativistic", "acgan")


def _impl():
    return _tfgan.losses_impl()


_NO_COLLECTION = {"loss_collection": None}


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """A generator/discriminator loss pair.

    Attributes:
      name: the registry name.
      generator_fn: ``(d_real, d_fake, **ctx) -> scalar float32``.
      discriminator_fn: ``(d_real, d_fake, **ctx) -> scalar float32``.
      sigmoid: whether the discriminator output is a logit of the probability "real" (used to
        log ``D(x)`` as a probability).
      options: the options the pair was built with (JSON-serialisable).
      needs_aux: ``True`` for ``acgan``: the discriminator must return
        ``(logits, class_logits)`` and the losses need ``one_hot_labels``.
    """

    name: str
    generator_fn: Callable[..., tf.Tensor]
    discriminator_fn: Callable[..., tf.Tensor]
    sigmoid: bool
    options: dict
    needs_aux: bool = False

    def generator_loss(self, d_real, d_fake, **ctx) -> tf.Tensor:
        """Generator loss from discriminator logits on real ``d_real`` and generated ``d_fake``.

        ``d_real``/``d_fake``: ``float [B, 1]`` or ``[B]``; ``acgan`` also takes
        ``class_logits_fake`` ``[B, K]`` and ``one_hot_labels`` ``[B, K]``. Returns a scalar.
        """
        return self.generator_fn(d_real, d_fake, **ctx)

    def discriminator_loss(self, d_real, d_fake, **ctx) -> tf.Tensor:
        """Discriminator loss (to minimise) from logits on real and generated data; a scalar."""
        return self.discriminator_fn(d_real, d_fake, **ctx)

    def get_config(self) -> dict:
        """``{"name": ..., **options}``, accepted by :func:`get`."""
        return {"name": self.name, **self.options}


def _minimax(generator_name, *, label_smoothing=0.25, generator_label_smoothing=0.0,
             real_weights=1.0, generated_weights=1.0, weights=1.0):
    gen = getattr(_impl(), f"{generator_name}_generator_loss")
    disc = getattr(_impl(), f"{generator_name}_discriminator_loss")

    def g(d_real, d_fake, **_):
        return gen(d_fake, label_smoothing=generator_label_smoothing, weights=weights,
                   **_NO_COLLECTION)

    def d(d_real, d_fake, **_):
        return disc(d_real, d_fake, label_smoothing=label_smoothing, real_weights=real_weights,
                    generated_weights=generated_weights, **_NO_COLLECTION)

    opts = {"label_smoothing": label_smoothing,
            "generator_label_smoothing": generator_label_smoothing}
    return g, d, opts


def _critic(g_name, d_name, options, *, weights, real_weights, generated_weights, **d_extra):
    """A pair of TF-GAN's critic losses ``impl.<g_name>`` / ``impl.<d_name>``."""
    impl = _impl()

    def g(d_real, d_fake, **_):
        return getattr(impl, g_name)(d_fake, weights=weights, **_NO_COLLECTION)

    def d(d_real, d_fake, **_):
        return getattr(impl, d_name)(d_real, d_fake, real_weights=real_weights,
                                     generated_weights=generated_weights, **d_extra,
                                     **_NO_COLLECTION)

    return g, d, options


def _wasserstein(*, real_weights=1.0, generated_weights=1.0, weights=1.0):
    return _critic("wasserstein_generator_loss", "wasserstein_discriminator_loss", {},
                   weights=weights, real_weights=real_weights,
                   generated_weights=generated_weights)


def _wasserstein_hinge(*, real_hinge=1.0, generated_hinge=1.0, real_weights=1.0,
                       generated_weights=1.0, weights=1.0):
    return _critic("wasserstein_hinge_generator_loss", "wasserstein_hinge_discriminator_loss",
                   {"real_hinge": real_hinge, "generated_hinge": generated_hinge},
                   weights=weights, real_weights=real_weights,
                   generated_weights=generated_weights, real_hinge=real_hinge,
                   generated_hinge=generated_hinge)


def _least_squares(*, real_label=1.0, fake_label=0.0, real_weights=1.0, generated_weights=1.0,
                   weights=1.0):
    impl = _impl()

    def g(d_real, d_fake, **_):
        return impl.least_squares_generator_loss(d_fake, real_label=real_label, weights=weights,
                                                 **_NO_COLLECTION)

    def d(d_real, d_fake, **_):
        return impl.least_squares_discriminator_loss(
            d_real, d_fake, real_label=real_label, fake_label=fake_label,
            real_weights=real_weights, generated_weights=generated_weights, **_NO_COLLECTION)

    return g, d, {"real_label": real_label, "fake_label": fake_label}


def _relativistic():
    impl = _impl()

    def g(d_real, d_fake, **_):
        return impl.relativistic_generator_loss(d_real, d_fake)

    def d(d_real, d_fake, **_):
        return impl.relativistic_discriminator_loss(d_real, d_fake)

    return g, d, {}


def _acgan(*, label_smoothing=0.25, generator_label_smoothing=0.0, aux_weight=1.0,
           aux_label_smoothing=0.0):
    impl = _impl()
    adv_g, adv_d, _ = _minimax("modified", label_smoothing=label_smoothing,
                               generator_label_smoothing=generator_label_smoothing)

    def g(d_real, d_fake, *, class_logits_fake, one_hot_labels, **_):
        aux = impl.acgan_generator_loss(class_logits_fake, one_hot_labels, **_NO_COLLECTION)
        return adv_g(d_real, d_fake) + aux_weight * aux

    def d(d_real, d_fake, *, class_logits_real, class_logits_fake, one_hot_labels, **_):
        aux = impl.acgan_discriminator_loss(
            class_logits_real, class_logits_fake, one_hot_labels,
            label_smoothing=aux_label_smoothing, **_NO_COLLECTION)
        return adv_d(d_real, d_fake) + aux_weight * aux

    opts = {"label_smoothing": label_smoothing,
            "generator_label_smoothing": generator_label_smoothing,
            "aux_weight": aux_weight, "aux_label_smoothing": aux_label_smoothing}
    return g, d, opts


_REGISTRY: dict[str, Callable[..., tuple]] = {
    "minimax": lambda **kw: _minimax("minimax", **kw),
    "modified": lambda **kw: _minimax("modified", **kw),
    "wasserstein": _wasserstein,
    "wasserstein_hinge": _wasserstein_hinge,
    "least_squares": _least_squares,
    "relativistic": _relativistic,
    "acgan": _acgan,
}

ALIASES = {
    "non_saturating": "modified",
    "nonsaturating": "modified",
    "original": "minimax",
    "wgan": "wasserstein",
    "hinge": "wasserstein_hinge",
    "lsgan": "least_squares",
}


def names() -> list[str]:
    """The valid loss names, sorted."""
    return sorted(_REGISTRY)


def get(name: Any = "modified", **options) -> GANLoss:
    """Return the :class:`GANLoss` pair called ``name``, built with TF-GAN's ``options``.

    ``name`` may also be a ``GANLoss`` (returned as is) or a dict ``{"name": ..., **options}``
    (as written by :meth:`GANLoss.get_config`). Aliases: ``non_saturating`` -> ``modified``,
    ``original`` -> ``minimax``, ``wgan`` -> ``wasserstein``, ``hinge`` -> ``wasserstein_hinge``,
    ``lsgan`` -> ``least_squares``.

    Raises:
      ValueError: unknown name (the message lists the valid ones) or unknown option.
    """
    if isinstance(name, GANLoss):
        if options:
            raise ValueError("options cannot be given with a GANLoss instance")
        return name
    if isinstance(name, dict):
        options = {**{k: v for k, v in name.items() if k != "name"}, **options}
        name = name.get("name")
    if not isinstance(name, str):
        raise ValueError(f"loss must be a name (str), a dict or a GANLoss, got {name!r}")
    key = ALIASES.get(name.lower().replace("-", "_"), name.lower().replace("-", "_"))
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown GAN loss {name!r}; valid names: {', '.join(names())} "
            f"(aliases: {', '.join(sorted(ALIASES))})")
    try:
        g, d, opts = _REGISTRY[key](**options)
    except TypeError as e:
        raise ValueError(f"invalid option for loss {key!r}: {e}") from None
    return GANLoss(name=key, generator_fn=g, discriminator_fn=d, sigmoid=key in SIGMOID_LOSSES,
                   options=opts, needs_aux=key == "acgan")


def combine_adversarial_loss(main_loss, adversarial_loss, weight_factor=None,
                             gradient_ratio=None, variables=None):
    """TF-GAN's ``combine_adversarial_loss``: ``main_loss + w * adversarial_loss`` (scalars).

    ``w = weight_factor``, or, with ``gradient_ratio=r``, ``w = (|grad main| / |grad adv|) / r``
    over ``variables`` (under ``stop_gradient``). TF-GAN's summaries are off; its gradient
    ratio calls ``tf.gradients``, so it works in a traced step (``fit``), not eagerly.
    """
    if gradient_ratio is not None:
        if tf.executing_eagerly():
            raise RuntimeError("gradient_ratio balancing needs graph mode (fit's compiled "
                               "step); use a fixed adversarial weight with run_eagerly")
        if not variables:
            raise ValueError("gradient_ratio needs the generator's variables")
    with warnings.catch_warnings():  # its unconditional v1 summary finds no writer: harmless
        warnings.simplefilter("ignore", UserWarning)
        return _impl().combine_adversarial_loss(
            main_loss, adversarial_loss, weight_factor=weight_factor,
            gradient_ratio=gradient_ratio, variables=variables, scalar_summaries=False,
            gradient_summaries=False)


# --------------------------------------------------------------------------- penalties


def _interpolate(real, fake, alpha=None, seed=None):
    real = tf.convert_to_tensor(real)
    fake = tf.cast(tf.convert_to_tensor(fake), real.dtype)
    diff = fake - real
    if alpha is None:
        shape = tf.concat([tf.shape(diff)[:1], tf.ones([tf.rank(diff) - 1], tf.int32)], 0)
        if seed is None:
            alpha = tf.random.uniform(shape, dtype=real.dtype)
        else:
            alpha = tf.random.stateless_uniform(shape, seed=seed, dtype=real.dtype)
    return real + tf.cast(alpha, real.dtype) * diff


def _squared_grad_norms(discriminator, x, conditioning=None):
    inputs = x if conditioning is None else [x, conditioning]
    with tf.GradientTape() as tape:
        tape.watch(x)
        if isinstance(discriminator, keras.layers.Layer):
            out = discriminator(inputs, training=True)
        else:  # a plain function of the inputs
            out = discriminator(inputs)
        if isinstance(out, (list, tuple)):  # ACGAN-style (logits, class_logits)
            out = out[0]
        out = tf.cast(out, tf.float32)
    grads = tape.gradient(out, x)
    grads = tf.cast(grads, tf.float32)
    return tf.reduce_sum(tf.square(grads), axis=tf.range(1, tf.rank(grads)))


def wasserstein_gradient_penalty(discriminator, real_data, generated_data, conditioning=None,
                                 epsilon=1e-10, target=1.0, one_sided=False, alpha=None,
                                 seed=None):
    """WGAN-GP penalty (Gulrajani et al. 2017) with TF-GAN's maths.

    ``penalty = mean((sqrt(||grad_x D(x_hat)||^2 + epsilon) / target - 1)^2)`` over
    ``x_hat = real + alpha * (generated - real)``, ``alpha ~ U[0, 1)`` per example; with
    ``one_sided=True`` only norms above ``target`` are penalised (Petzka et al. 2017).

    TF-GAN's ``wasserstein_gradient_penalty`` raises in eager mode and rebuilds the
    discriminator inside a ``tf.compat.v1.variable_scope`` -- neither fits Keras 3 models or
    ``tf.function``/XLA. This version uses ``tf.GradientTape`` and is tested against TF-GAN's
    function (run in a v1 graph with the same ``alpha``) to 1e-6.

    Args:
      discriminator: callable ``D(x)`` or ``D([x, conditioning])`` returning logits ``[B, 1]``
        (or a tuple whose first element is the logits).
      real_data, generated_data: ``float [B, ...]``, same shape.
      conditioning: optional labels passed to ``D`` with the interpolates.
      epsilon, target, one_sided: TF-GAN's options.
      alpha: optional ``[B, 1, ...]`` interpolation weights (for tests); drawn when ``None``.
      seed: optional stateless seed ``[2]`` for ``alpha``.

    Returns:
      Scalar ``float32`` penalty (multiply by the penalty weight, usually 10).
    """
    x_hat = _interpolate(real_data, generated_data, alpha, seed)
    sq = _squared_grad_norms(discriminator, x_hat, conditioning)
    slopes = tf.sqrt(sq + epsilon)
    penalties = slopes / target - 1.0
    if one_sided:
        penalties = tf.maximum(0.0, penalties)
    return tf.reduce_mean(tf.square(penalties))


def r1_penalty(discriminator, real_data, conditioning=None, gamma=10.0):
    """R1 penalty (Mescheder et al. 2018): ``gamma / 2 * mean(||grad_x D(x)||^2)`` on real data.

    Args:
      discriminator: callable returning logits ``[B, 1]`` (or a tuple starting with them).
      real_data: ``float [B, ...]``.
      conditioning: optional labels passed to ``D`` as ``[x, labels]``.
      gamma: the penalty weight.

    Returns:
      Scalar ``float32``.
    """
    x = tf.convert_to_tensor(real_data)
    return 0.5 * gamma * tf.reduce_mean(_squared_grad_norms(discriminator, x, conditioning))


def clip_weights(variables, clip_value: float):
    """WGAN weight clipping (Arjovsky et al. 2017): assign ``clip(v, -c, c)`` to each variable.

    Same effect as TF-GAN's ``clip_variables`` (which wraps a TF1 optimizer and so cannot wrap a
    Keras 3 one): call after each discriminator update. ``clip_value`` must be positive.
    """
    if clip_value is None or clip_value <= 0:
        raise ValueError(f"clip_value must be a positive float, got {clip_value!r}")
    for v in variables:
        v.assign(tf.clip_by_value(v, -clip_value, clip_value))
