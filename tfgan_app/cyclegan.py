"""CycleGAN: unpaired image-to-image translation (Zhu et al. 2017) trained with ``fit()``.

Four networks: generators ``G: A -> B`` (``generator_ab``) and ``F: B -> A``
(``generator_ba``), discriminators ``D_A`` (judges images of A) and ``D_B``. The dataset yields
unpaired ``(a, b)`` batches (:mod:`tfgan_app.data.unpaired`). Each ``train_step``:

1. **generators** (one optimizer over G's and F's variables): ``fake_b = G(a)``,
   ``fake_a = F(b)`` and

   ``g_loss = adv(D_B(fake_b)) + adv(D_A(fake_a)) + cycle + identity``

   where ``adv`` is the generator side of a TF-GAN loss pair (by name; default
   ``least_squares``, the paper's), ``cycle = cycle_weight * cycle_consistency_loss(a,
   F(G(a)), b, G(F(b)))`` -- TF-GAN's function: the mean of the two mean absolute errors, so
   ``cycle_weight=10`` -- and ``identity = identity_weight * cycle_weight * (|G(b) - b|_1 +
   |F(a) - a|_1) / 2`` (the paper's identity loss at 0.5 x the cycle weight, in the same
   averaged form; ``identity_weight=0`` switches it off, and must when the domains differ in
   shape);
2. **discriminators** (one optimizer over D_A's and D_B's): the loss pair's discriminator side,
   ``D_A`` on real ``a`` against ``fake_a`` drawn through a history pool, ``D_B`` likewise.

The **history pool** (:class:`HistoryPool`, one per domain, 50 images, as the paper and
TF-GAN's ``tensor_pool``): until it is full each new fake is stored and returned; then each new
fake replaces a random stored one and, with probability 0.5, the *stored* one is returned
instead of the new one. Its buffer and count are non-trainable variables (so it runs under XLA
and ``steps_per_execution`` and is saved with the model: a resumed run continues with the same
pool) and its randomness comes from the model's seeded stream (:mod:`tfgan_app.randomness`).
Under ``tf.distribute`` the pool is one global pool, as on one device: every replica keeps an
identical copy and queries the all-gathered global batch with the same seed, so R replicas
train exactly as one device on the global batch (``tests/test_cyclegan.py`` checks two
replicas against one device).

Logs: ``g_loss``, ``d_loss``, ``g_adv_ab`` (G's adversarial term), ``g_adv_ba`` (F's),
``cycle``, ``identity``, ``d_a``, ``d_b``.

Training options (``compile``): the loss pair and its options, ``ema_decay`` (EMA copies of
both generators, used by :meth:`CycleGAN.translate`), ``jit_compile`` and
``steps_per_execution`` (:mod:`tfgan_app.options`); the GANModel remedies do not apply here
and are refused. The paper's learning-rate schedule, constant then linearly to 0 over the
second half of training, is :class:`LinearDecay` (pass it to the optimizers).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfgan_app import _tfgan, images, replication
from tfgan_app import losses as losses_lib
from tfgan_app.keras_workarounds import KerasFitWorkarounds
from tfgan_app.model import GANModel, ema_copy, ema_update, gan_optimizers
from tfgan_app.options import TrainingOptions, training_options
from tfgan_app.randomness import SeededTraining
from tfgan_app.translation import Triptych

#: The training options CycleGAN implements; the others must keep their defaults.
SUPPORTED_OPTIONS = ("loss", "loss_options", "ema_decay", "jit_compile", "steps_per_execution")
DIRECTIONS = ("a_to_b", "b_to_a")
_LOGS = ("g_loss", "d_loss", "g_adv_ab", "g_adv_ba", "cycle", "identity", "d_a", "d_b")


def cycle_consistency_loss(a, reconstructed_a, b, reconstructed_b):
    """TF-GAN's ``cycle_consistency_loss``: ``(mean|a - F(G(a))| + mean|b - G(F(b))|) / 2``,
    a ``float32`` scalar (images ``[B, H, W, C]``)."""
    f32 = [tf.cast(t, tf.float32) for t in (a, reconstructed_a, b, reconstructed_b)]
    return _tfgan.losses_impl().cycle_consistency_loss(*f32)


@keras.saving.register_keras_serializable(package="tfgan_app")
class HistoryPool(keras.layers.Layer):
    """A pool of ``size`` past generated images with TF-GAN ``tensor_pool`` semantics, per
    image, in variables.

    :meth:`query` takes a batch of new images and returns a batch of the same shape: image by
    image, while fewer than ``size`` are stored the new one is stored and returned; once full,
    the new one replaces a uniformly chosen stored one, and the *stored* one is returned with
    probability ``probability`` (the new one otherwise). ``size=0``: the identity.

    Variables (non-trainable, saved with the model; ``on_read``: one copy per replica, the
    first replica's saved): ``images float32 [size, H, W, C]`` and ``count int32`` (images
    stored, at most ``size``).
    """

    def __init__(self, size: int = 50, image_shape=(1, 1, 1), probability: float = 0.5,
                 **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.size, self.probability = int(size), float(probability)
        self.image_shape = tuple(int(s) for s in image_shape)
        if self.size < 0 or not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"pool size must be >= 0 and probability in [0, 1]; got "
                             f"{size}, {probability}")
        if self.size:
            # Per replica (on_read): every replica keeps its own, identical copy, updated
            # without communication; reads outside a replica (saving) take the first's.
            kw = dict(initializer="zeros", trainable=False, synchronization="on_read",
                      aggregation="only_first_replica")
            with keras.name_scope(self.name, caller=self):
                self.images = keras.Variable(shape=(self.size, *self.image_shape),
                                             dtype="float32", name="images", **kw)
                self.count = keras.Variable(shape=(), dtype="int32", name="count", **kw)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "size": self.size, "image_shape": self.image_shape,
                "probability": self.probability}

    def query(self, images, seed):
        """The pooled batch for new ``images`` ``[B, H, W, C]`` (returned in their dtype);
        ``seed``: a stateless-op seed ``int64 [2]`` (all of this call's randomness).

        Under ``tf.distribute`` (``B`` images per replica) the pool is global: each replica
        all-gathers the global batch, queries it with the same seed into its own copy of the
        pool (so the copies stay identical) and returns its own slice, which makes a step on
        R replicas the step of one device on the global batch. ``seed`` must therefore be the
        same on every replica (:meth:`CycleGAN.pool_seed`).
        """
        if not self.size:
            return images
        x = tf.cast(images, tf.float32)
        ctx = tf.distribute.get_replica_context()
        replicas = 1 if ctx is None else ctx.num_replicas_in_sync
        local = tf.shape(x)[0]
        if replicas > 1:
            x = ctx.all_gather(x, axis=0)
        n = tf.shape(x)[0]
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        slots = tf.random.stateless_uniform([n], seeds[0], minval=0, maxval=self.size,
                                            dtype=tf.int32)
        coins = tf.random.stateless_uniform([n], seeds[1])

        def one(i, buf, count, out):  # image by image: a later image may replace an earlier
            full = count >= self.size
            j = tf.where(full, slots[i], count)
            old = tf.gather(buf, j)
            pick = tf.logical_and(full, coins[i] < self.probability)
            return (i + 1, tf.tensor_scatter_nd_update(buf, [[j]], x[i][None]),
                    tf.minimum(count + 1, self.size), out.write(i, tf.where(pick, old, x[i])))

        _, buf, count, out = tf.while_loop(
            lambda i, *_: i < n, one,
            (tf.constant(0), tf.convert_to_tensor(self.images.value),
             tf.convert_to_tensor(self.count.value), tf.TensorArray(tf.float32, size=n)))
        self.images.assign(buf)
        self.count.assign(count)
        out = tf.reshape(out.stack(), tf.shape(x))
        if replicas > 1:
            start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * local
            out = out[start:start + local]
        return tf.cast(out, images.dtype)


@keras.saving.register_keras_serializable(package="tfgan_app")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The paper's schedule: ``initial_learning_rate`` for the first ``decay_start`` fraction
    of ``total_steps``, then linearly down to 0 at ``total_steps`` (and 0 after)."""

    def __init__(self, initial_learning_rate: float, total_steps: int,
                 decay_start: float = 0.5):
        if int(total_steps) < 1 or not 0.0 <= float(decay_start) < 1.0:
            raise ValueError(f"total_steps must be >= 1 and decay_start in [0, 1); got "
                             f"{total_steps}, {decay_start}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps, self.decay_start = int(total_steps), float(decay_start)

    def __call__(self, step):
        start = float(int(self.total_steps * self.decay_start))
        span = max(1.0, self.total_steps - start)
        frac = tf.clip_by_value(1.0 - (tf.cast(step, tf.float32) - start) / span, 0.0, 1.0)
        return self.initial_learning_rate * frac

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "total_steps": self.total_steps, "decay_start": self.decay_start}


def _image_shape(t) -> tuple:
    return tuple(t.shape[1:])


@keras.saving.register_keras_serializable(package="tfgan_app")
class CycleGAN(SeededTraining, KerasFitWorkarounds, keras.Model):
    """CycleGAN as one Keras model: ``compile()`` with two optimizers and a loss pair,
    ``fit()`` on unpaired ``(a, b)`` batches.

    Args:
      generator_ab: ``G``, ``keras.Model`` ``[B, *shape_a]`` -> ``[B, *shape_b]`` in ``[-1, 1]``
        (e.g. :func:`tfgan_app.builders.resnet_generator`).
      generator_ba: ``F``, ``[B, *shape_b]`` -> ``[B, *shape_a]``.
      discriminator_a, discriminator_b: ``[B, *shape_a]`` (``shape_b``) -> logits, one per
        patch for :func:`tfgan_app.builders.patchgan_discriminator` with
        ``conditional=False``.
      cycle_weight: weight of TF-GAN's cycle-consistency loss (10, the paper's lambda).
      identity_weight: the identity loss's weight as a fraction of ``cycle_weight`` (0.5, the
        paper's; 0: off).
      pool_size, pool_probability: the history pools (50 and 0.5; ``pool_size=0``: off).
      seed: seed of the model's random stream (the pools' draws).

    Example::

        shape = (32, 32, 1)
        gan = CycleGAN(builders.resnet_generator(shape, num_blocks=3, base_filters=16),
                       builders.resnet_generator(shape, num_blocks=3, base_filters=16),
                       builders.patchgan_discriminator(shape, conditional=False,
                                                       norm="instance"),
                       builders.patchgan_discriminator(shape, conditional=False,
                                                       norm="instance"), seed=0)
        gan.compile()                     # least squares, Adam(2e-4, beta_1=0.5)
        gan.fit(tfgan_app.data.unpaired.offline(), epochs=5)
        b_like = gan.translate(a_images)  # or translate(b_images, "b_to_a")
    """

    def __init__(self, generator_ab, generator_ba, discriminator_a, discriminator_b, *,
                 cycle_weight: float = 10.0, identity_weight: float = 0.5,
                 pool_size: int = 50, pool_probability: float = 0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        nets = {"generator_ab": generator_ab, "generator_ba": generator_ba,
                "discriminator_a": discriminator_a, "discriminator_b": discriminator_b}
        for name, net in nets.items():
            if not isinstance(net, keras.Model) or len(net.inputs or []) != 1:
                raise ValueError(f"{name} must be a keras.Model with one image input, got "
                                 f"{type(net).__name__}")
        shape_a, shape_b = (_image_shape(generator_ab.inputs[0]),
                            _image_shape(generator_ab.outputs[0]))
        expect = {"generator_ba input": (_image_shape(generator_ba.inputs[0]), shape_b),
                  "generator_ba output": (_image_shape(generator_ba.outputs[0]), shape_a),
                  "discriminator_a input": (_image_shape(discriminator_a.inputs[0]), shape_a),
                  "discriminator_b input": (_image_shape(discriminator_b.inputs[0]), shape_b)}
        for what, (got, want) in expect.items():
            if got != want:
                raise ValueError(f"{what} has shape {got} but generator_ab maps {shape_a} (A) "
                                 f"to {shape_b} (B), so it must be {want}")
        if float(cycle_weight) < 0 or float(identity_weight) < 0:
            raise ValueError(f"cycle_weight and identity_weight must be >= 0, got "
                             f"{cycle_weight}, {identity_weight}")
        if float(identity_weight) > 0 and shape_a != shape_b:
            raise ValueError(f"the identity loss feeds images of B to G: A -> B, so it needs "
                             f"domains of one shape; A is {shape_a}, B is {shape_b}: pass "
                             "identity_weight=0")
        self.generator_ab, self.generator_ba = generator_ab, generator_ba
        self.discriminator_a, self.discriminator_b = discriminator_a, discriminator_b
        self.shape_a, self.shape_b = shape_a, shape_b
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.pool_a = HistoryPool(pool_size, shape_a, pool_probability, name="pool_a")
        self.pool_b = HistoryPool(pool_size, shape_b, pool_probability, name="pool_b")
        self._seed = seed
        self.latent_dim = 1  # SeededTraining's sample_latent is unused: no latent noise
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {k: keras.metrics.Mean(name=k) for k in _LOGS}
        self.ema_generator_ab = self.ema_generator_ba = None
        self.built = True

    # ------------------------------------------------------------------ Keras plumbing

    def call(self, inputs, training=False):
        """``G(a)``: images of A translated to B."""
        return self.generator_ab(inputs, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def generators(self):
        return [self.generator_ab, self.generator_ba]

    @property
    def discriminators(self):
        return [self.discriminator_a, self.discriminator_b]

    @staticmethod
    def _variables(nets):
        return [v for net in nets for v in net.trainable_variables]

    def compile(self, d_optimizer=None, g_optimizer=None, *, run_eagerly=False, **options):
        """Configure training: two optimizers (``d_optimizer`` over both discriminators,
        ``g_optimizer`` over both generators; default ``Adam(2e-4, beta_1=0.5)``, the paper's)
        and the training options in :data:`SUPPORTED_OPTIONS` (``loss`` defaults to
        ``least_squares``). Call inside a strategy's scope when using one.

        Raises:
          TypeError: an unknown option. ValueError: an invalid value, or a GANModel option
          (penalty, remedy, ``d_steps``...) that CycleGAN does not implement.
        """
        options.setdefault("loss", "least_squares")
        opts = TrainingOptions(**options)
        defaults = {o.name: o.default for o in training_options()}
        unsupported = sorted(k for k, v in opts.as_dict().items()
                             if k not in SUPPORTED_OPTIONS and v != defaults[k])
        if unsupported:
            raise ValueError(f"CycleGAN does not implement the option(s) {', '.join(unsupported)}"
                             f"; it supports {', '.join(SUPPORTED_OPTIONS)}")
        super().compile(optimizer=None, jit_compile=opts.jit_compile,
                        steps_per_execution=opts.steps_per_execution, run_eagerly=run_eagerly)
        self.gan_loss = losses_lib.get(opts.loss, **opts.loss_options)
        if self.gan_loss.needs_aux:
            raise ValueError("the 'acgan' loss needs class labels; unpaired images have none")
        self.options = opts.replace(loss=self.gan_loss.get_config(), loss_options={})
        float16 = any(layer.compute_dtype == "float16"
                      for net in (*self.generators, *self.discriminators)
                      for layer in net._flatten_layers())
        self.d_optimizer, self.g_optimizer = gan_optimizers(
            d_optimizer, g_optimizer, float16, self._variables(self.discriminators),
            self._variables(self.generators))
        if opts.ema_decay is not None and self.ema_generator_ab is None:
            self.ema_generator_ab, self.ema_generator_ba = (ema_copy(g) for g in self.generators)

    # The same two-optimizer compile config as GANModel's: both optimizers and every training
    # option (the unsupported ones at their defaults, which compile accepts).
    get_compile_config = GANModel.get_compile_config
    compile_from_config = GANModel.compile_from_config

    def get_config(self):
        nets = {k: keras.saving.serialize_keras_object(getattr(self, k))
                for k in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")}
        return {"name": self.name, **nets, "cycle_weight": self.cycle_weight,
                "identity_weight": self.identity_weight, "pool_size": self.pool_a.size,
                "pool_probability": self.pool_a.probability, "seed": self._seed}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for k in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"):
            config[k] = keras.saving.deserialize_keras_object(config[k],
                                                              custom_objects=custom_objects)
        return cls(**config)

    # ------------------------------------------------------------------ training

    def _unpack(self, data):
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError("CycleGAN expects a dataset of unpaired (a, b) image batches "
                             "(tfgan_app.data.unpaired)")
        for name, t, want in (("a", data[0], self.shape_a), ("b", data[1], self.shape_b)):
            if not t.dtype.is_floating:
                raise ValueError(f"images of domain {name.upper()} must be floating point in "
                                 f"[-1, 1], got {t.dtype.name}")
            if t.shape.rank is not None and _image_shape(t) != want:
                raise ValueError(f"the dataset's domain {name.upper()} images have shape "
                                 f"{_image_shape(t)} but the networks expect {want}")
        return data[0], data[1]

    def _logits(self, disc, x, training):
        out = disc(x, training=training)
        return tf.cast(out[0] if isinstance(out, (list, tuple)) else out, tf.float32)

    def _adversarial(self, disc, real, fake, training):
        """The loss pair's generator loss for ``fake`` judged by ``disc`` (``real`` feeds the
        relativistic loss only)."""
        d_fake = self._logits(disc, fake, training)
        d_real = (self._logits(disc, real, training) if self.gan_loss.name == "relativistic"
                  else d_fake)
        return self.gan_loss.generator_loss(
            *replication.global_logits(self.gan_loss.name, d_real, d_fake))

    def _d_loss(self, disc, real, fake, training):
        d_real, d_fake = replication.global_logits(
            self.gan_loss.name, self._logits(disc, real, training),
            self._logits(disc, fake, training))
        return self.gan_loss.discriminator_loss(d_real, d_fake)

    def generator_losses(self, a, b, training=True):
        """The generators' loss terms on one batch, a dict of ``float32`` scalars
        (``g_adv_ab``, ``g_adv_ba``, ``cycle``, ``identity``, ``g_loss``) and the fakes
        ``(fake_a, fake_b)`` = ``(F(b), G(a))`` in the data's dtype."""
        G, F = self.generator_ab, self.generator_ba
        fake_b = tf.cast(G(a, training=training), b.dtype)
        fake_a = tf.cast(F(b, training=training), a.dtype)
        terms = {
            "g_adv_ab": self._adversarial(self.discriminator_b, b, fake_b, training),
            "g_adv_ba": self._adversarial(self.discriminator_a, a, fake_a, training),
            "cycle": self.cycle_weight * cycle_consistency_loss(
                a, F(fake_b, training=training), b, G(fake_a, training=training)),
            "identity": tf.constant(0.0, tf.float32),
        }
        if self.identity_weight > 0:
            idt = (tf.reduce_mean(tf.abs(tf.cast(G(b, training=training) - b, tf.float32)))
                   + tf.reduce_mean(tf.abs(tf.cast(F(a, training=training) - a, tf.float32))))
            terms["identity"] = self.identity_weight * self.cycle_weight * idt / 2.0
        terms["g_loss"] = tf.add_n(list(terms.values()))
        return terms, (fake_a, fake_b)

    def discriminator_losses(self, a, b, fake_a, fake_b, training=True):
        """``{"d_a", "d_b", "d_loss"}``: the loss pair's discriminator losses of ``D_A`` (real
        ``a`` against ``fake_a``) and ``D_B``, and their sum."""
        d_a = self._d_loss(self.discriminator_a, a, fake_a, training)
        d_b = self._d_loss(self.discriminator_b, b, fake_b, training)
        return {"d_a": d_a, "d_b": d_b, "d_loss": d_a + d_b}

    @staticmethod
    def _scaled(optimizer, loss):
        # Keras sums gradients over replicas: scale the per-replica mean
        # (tfgan_app.replication), then by a LossScaleOptimizer's scale (mixed_float16)
        return optimizer.scale_loss(loss / replication.num_replicas())

    def _apply(self, optimizer, scaled_loss, tape, nets):
        variables = self._variables(nets)
        optimizer.apply(tape.gradient(scaled_loss, variables), variables)

    # No Python control flow depends on tensors below: skipping AutoGraph's conversion of the
    # step (and of everything it calls) roughly halves the time fit() takes to trace it.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        if not hasattr(self, "gan_loss"):
            raise RuntimeError("call compile() before fit()")
        a, b = self._unpack(data)
        with tf.GradientTape() as tape:
            terms, (fake_a, fake_b) = self.generator_losses(a, b)
            scaled = self._scaled(self.g_optimizer, terms["g_loss"])
        self._apply(self.g_optimizer, scaled, tape, self.generators)
        if self.options.ema_decay is not None:
            self._update_ema()
        # D sees this step's fakes (from the generators before their update, as in the
        # paper's code) through the history pools.
        fake_a = self.pool_a.query(tf.stop_gradient(fake_a), self.pool_seed())
        fake_b = self.pool_b.query(tf.stop_gradient(fake_b), self.pool_seed())
        with tf.GradientTape() as tape:
            d_terms = self.discriminator_losses(a, b, fake_a, fake_b)
            scaled = self._scaled(self.d_optimizer, d_terms["d_loss"])
        self._apply(self.d_optimizer, scaled, tape, self.discriminators)
        return self._log({**terms, **d_terms})

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        a, b = self._unpack(data)
        terms, (fake_a, fake_b) = self.generator_losses(a, b, training=False)
        return self._log({**terms, **self.discriminator_losses(a, b, fake_a, fake_b, False)})

    def pool_seed(self):
        """The pools' seed ``int64 [2]``: the model's stream *without* the replica id folded in
        (one device's :meth:`next_seed`), the same on every replica (:meth:`HistoryPool.query`)."""
        return tf.cast(self.seed_generator.next(), tf.int64)

    def _log(self, values):
        for k, tracker in self.trackers.items():
            tracker.update_state(values[k])
        return self._distributed_logs({k: t.result() for k, t in self.trackers.items()})

    def _update_ema(self):
        ema_update(self.ema_generator_ab, self.generator_ab, self.options.ema_decay)
        ema_update(self.ema_generator_ba, self.generator_ba, self.options.ema_decay)

    # ------------------------------------------------------------------ inference

    def sampling_generator(self, direction: str = "a_to_b"):
        """The network that translates in ``direction`` for sampling and export: the EMA copy
        when ``ema_decay`` is on, else the trained generator."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        ab = direction == "a_to_b"
        ema = self.ema_generator_ab if ab else self.ema_generator_ba
        return ema if ema is not None else (self.generator_ab if ab else self.generator_ba)

    def translate(self, images, direction: str = "a_to_b", batch_size: int = 256,
                  use_ema: bool = True) -> np.ndarray:
        """``float32 [N, *shape]`` in ``[-1, 1]``: ``images`` (``[N, *shape_a]`` for
        ``"a_to_b"``, ``[N, *shape_b]`` for ``"b_to_a"``, in ``[-1, 1]``) translated in
        inference mode by the (EMA) generator of that direction."""
        gen = self.sampling_generator(direction)
        if not use_ema:
            gen = self.generator_ab if direction == "a_to_b" else self.generator_ba
        x = np.asarray(images, np.float32)
        want = self.shape_a if direction == "a_to_b" else self.shape_b
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"images to translate {direction} must have shape "
                             f"[N, {', '.join(map(str, want))}], got {x.shape}")
        return np.concatenate([np.asarray(gen(x[i:i + batch_size], training=False), np.float32)
                               for i in range(0, len(x), batch_size)])


def cycle_grid(gan, a, b) -> np.ndarray:
    """One ``uint8`` picture of both cycles: a row per example, columns
    ``a | G(a) | F(G(a)) | b | F(b) | G(F(b))`` (images of the two domains brought to B's size
    with nearest-neighbour resizing and to 3 channels when either domain has colour)."""
    g_a = gan.translate(a)
    f_b = gan.translate(b, "b_to_a")
    cols = [np.asarray(a, np.float32), g_a, gan.translate(g_a, "b_to_a"),
            np.asarray(b, np.float32), f_b, gan.translate(f_b)]
    n = min(len(a), len(b))
    size = gan.shape_b[:2]
    cols = [tf.image.resize(c[:n], size, method="nearest").numpy() for c in cols]
    channels = max(c.shape[-1] for c in cols)
    cols = [np.repeat(c, channels, axis=-1) if c.shape[-1] != channels else c for c in cols]
    rows = np.stack(cols, axis=1).reshape((-1, *size, channels))
    return images.tile(images.to_uint8(rows), cols=6)


class CycleGrid(Triptych):
    """Every ``every`` epochs and after the last: ``out_dir/epoch_XXXX.png`` of
    :func:`cycle_grid` on fixed held-out images ``a`` and ``b`` (and a TensorBoard image
    ``cycles``)."""

    summary_name = "cycles"

    def picture(self) -> np.ndarray:
        return cycle_grid(self.model, self.sources, self.targets)
