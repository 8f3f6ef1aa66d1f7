"""Discriminator penalties: terms added to the discriminator's loss, one small class each.

A penalty is a :class:`Penalty` subclass with its ``options`` (the first is its weight; 0
switches it off) and a ``__call__`` returning the weighted scalar term. Registering it with
``@register_penalty`` makes its options ``GANModel.compile`` keywords, settings keys of every
preset, ``--set`` keys and rows of the README's table (:mod:`tfgan_app.options`); the model
adds every active penalty to the discriminator's loss, in registration order. See
``docs/architecture.md``, "Add a remedy".
"""

from __future__ import annotations

# TensorFlow and the losses are imported where a penalty is computed: registering the
# penalties' options (tfgan_app.options, read by `tfgan-app presets`) must stay TF-free.
from tfgan_app.options import Option, boolean, integer, number, register_penalty


class Penalty:
    """Base class: ``options`` (a tuple of :class:`~tfgan_app.options.Option`, weight first)
    and ``__call__(gan, real, fake, labels) -> float32 scalar`` (already weighted).

    ``gan`` is the :class:`~tfgan_app.GANModel`: read option values from ``gan.options``, call
    the discriminator as ``gan.discriminator`` with ``gan.d_conditioning(labels)`` (``None``
    or the labels), and draw randomness from ``gan``'s seeded samplers (e.g.
    ``gan.sample_interpolation_weights(real)``) so that runs are reproducible, resumable and
    equal on one device and N replicas.
    """

    options: tuple = ()

    @property
    def name(self) -> str:
        return self.options[0].name

    def __call__(self, gan, real, fake, labels):
        raise NotImplementedError


@register_penalty
class GradientPenalty(Penalty):
    """WGAN-GP (Gulrajani et al. 2017) with TF-GAN's maths: ``weight * mean((sqrt(||grad
    D(x_hat)||^2 + eps) / target - 1)^2)`` on interpolates ``x_hat = x + alpha (G(z) - x)``
    (:func:`tfgan_app.losses.wasserstein_gradient_penalty`)."""

    options = (
        Option("gradient_penalty", 0.0, number(0), "WGAN-GP weight (10 is usual); 0: off",
               "penalty"),
        Option("gp_target", 1.0, number(0, open_min=True), "TF-GAN's target gradient norm",
               "penalty"),
        Option("gp_one_sided", False, boolean, "penalise only norms above the target",
               "penalty"),
        Option("gp_epsilon", 1e-10, number(0), "TF-GAN's epsilon inside the square root",
               "penalty"),
    )

    def __call__(self, gan, real, fake, labels):
        from tfgan_app import losses as losses_lib

        o = gan.options
        alpha = gan.sample_interpolation_weights(real)
        return o.gradient_penalty * losses_lib.wasserstein_gradient_penalty(
            gan.discriminator, real, fake, conditioning=gan.d_conditioning(labels),
            epsilon=o.gp_epsilon, target=o.gp_target, one_sided=o.gp_one_sided, alpha=alpha)


@register_penalty
class R1Penalty(Penalty):
    """R1 (Mescheder et al. 2018): ``gamma / 2 * mean(||grad_x D(x)||^2)`` on real data.

    With ``r1_interval = N > 1`` it is StyleGAN2's lazy regularization (Karras et al. 2020,
    as in StyleGAN2-ADA's code, ``D_reg_interval = 16``): computed only on the discriminator
    steps whose counter is a multiple of ``N``, with weight ``N * gamma`` there and 0 on the
    others, so the penalty's average is unchanged and its cost (a second backward pass through
    D) is paid once every ``N`` steps.
    """

    options = (Option("r1_gamma", 0.0, number(0), "R1 penalty weight gamma on real data; 0: "
                      "off", "penalty"),
               Option("r1_interval", 1, integer(1), "lazy R1 (StyleGAN2): computed every N "
                      "discriminator steps with weight N x gamma; 1: every step", "penalty"))

    def __call__(self, gan, real, fake, labels):
        import tensorflow as tf

        from tfgan_app import losses as losses_lib

        interval = gan.options.r1_interval

        def term():
            return losses_lib.r1_penalty(gan.discriminator, real,
                                         conditioning=gan.d_conditioning(labels),
                                         gamma=gan.options.r1_gamma * interval)

        if interval == 1:
            return term()
        return tf.cond(tf.equal(gan.d_optimizer.iterations % interval, 0), term,
                       lambda: tf.constant(0.0, tf.float32))


@register_penalty
class L2Penalty(Penalty):
    """``lambda * sum ||W||^2`` over the discriminator's kernels (trainable weights of rank
    >= 2)."""

    options = (Option("d_l2", 0.0, number(0), "L2 penalty on D's kernels; 0: off", "penalty"),)

    def __call__(self, gan, real, fake, labels):
        import tensorflow as tf

        kernels = [w for w in gan.discriminator.trainable_weights if len(w.shape) >= 2]
        if not kernels:
            return tf.constant(0.0)
        return gan.options.d_l2 * tf.add_n([tf.reduce_sum(tf.square(tf.cast(w, tf.float32)))
                                            for w in kernels])


@register_penalty
class DraganPenalty(Penalty):
    """DRAGAN (Kodali et al. 2017): the gradient-norm penalty in a neighbourhood of the real
    data, ``weight * mean((||grad D(x_hat)|| - 1)^2)`` with ``x_hat = x + alpha (x_p - x)``,
    ``x_p = x + c * std(x) * u``, ``u ~ U[0, 1)`` per element and ``alpha ~ U[0, 1)`` per
    example (``std`` over this replica's batch), as in the authors' and common TF2 code."""

    options = (
        Option("dragan", 0.0, number(0), "DRAGAN penalty weight around real data (10 is "
               "usual); 0: off", "penalty"),
        Option("dragan_c", 0.5, number(0, open_min=True), "DRAGAN perturbation scale c: "
               "x + c * std(x) * U[0, 1)", "penalty"),
    )

    def __call__(self, gan, real, fake, labels):
        import tensorflow as tf

        from tfgan_app import losses as losses_lib

        o = gan.options
        u = tf.random.stateless_uniform(tf.shape(real), seed=gan.next_seed(), dtype=real.dtype)
        perturbed = real + o.dragan_c * tf.math.reduce_std(real) * u
        return o.dragan * losses_lib.wasserstein_gradient_penalty(
            gan.discriminator, real, perturbed, conditioning=gan.d_conditioning(labels),
            alpha=gan.sample_interpolation_weights(real))
