"""GANModel: a ``keras.Model`` that trains a generator and a discriminator with ``fit()``.

Algorithm 1 of Goodfellow et al. (2014), k = ``d_steps``
------------------------------------------------------
Each ``train_step`` receives one minibatch of ``m`` real examples from the dataset and

1. draws ``m`` fresh latent vectors, and updates the discriminator once on that real minibatch
   against the generated one (plus any gradient penalty / R1 / weight clipping);
2. if the discriminator has now taken a multiple of ``k`` steps (its optimizer's
   ``iterations % k == 0``), draws ``m`` fresh latent vectors and updates the generator once.

So the k discriminator updates of one round each see a *different* real minibatch and fresh
noise -- exactly as in the paper's inner loop (and as TF-GAN's sequential train hooks did with
``GANTrainSteps(1, k)``) -- and one epoch of ``N`` batches makes ``N`` discriminator and
``N / k`` generator updates. The step counter is the discriminator optimizer's ``iterations``,
so it is saved and restored with the optimizer (``.keras`` files, ``BackupAndRestore``).

Logged per epoch (means over the epoch's steps): ``d_loss`` and ``g_loss`` (the generator loss
averages only the steps that updated the generator), ``d_real`` and ``d_fake``: the
discriminator's mean output on real and on generated data -- a probability ``sigmoid(logit)`` for
the sigmoid losses (``minimax``, ``modified``, ``relativistic``, ``acgan``), the raw critic score
otherwise. At the optimum of the minimax game ``D*(x) = p_data / (p_data + p_g) = 1/2``.
``g_grad_norm``: the global norm of the generator's gradient of ``g_loss`` (per replica, mean
over the generator's steps), the vanishing-gradient signal of :mod:`tfgan_app.doctor`.

Conditional models
------------------
With ``num_classes`` set, the dataset must yield ``(images, labels)`` (``int [B]``). The
generator takes ``[z, labels]``. The discriminator takes ``[x, labels]`` when it has two inputs;
with the ``acgan`` loss it takes ``x`` alone and returns ``(logits, class_logits)``. Generated
examples use the labels of the real minibatch they are compared with.

InfoGAN
-------
A generator with a categorical code (:mod:`tfgan_app.builders.infogan`; the run setting
``categorical_code``) reads a code ``c = argmax(z[:, :K])`` from its latent vector, and the
discriminator returns ``(logits, code_logits)``. Both losses then add
``info_weight x CE(c, code_logits(G(z)))`` (Chen et al. 2016: the variational lower bound of
``I(c; G(z, c))`` up to the constant ``log K``; TF-GAN's ``mutual_information_penalty``), and
the mean cross-entropy is logged as ``info_loss``. Real data is never asked for a code.

Distributed and mixed-precision training
----------------------------------------
Build and ``compile`` the model inside ``strategy.scope()`` (``compile`` builds both
optimizers there); the dataset's batch size is the *global* batch size. The maths under
replication (1/N loss scaling, per-replica noise, all-gathered batch-coupled losses,
conditional updates through ``merge_call``) is in :mod:`tfgan_app.replication`; batch
normalisation is the exception (per-replica statistics). Under a ``mixed_float16`` policy
``compile`` wraps both optimizers in ``keras.optimizers.LossScaleOptimizer``; generated data is
cast to the real data's dtype before the two are mixed, and logits are float32.

Randomness and resuming
-----------------------
All training randomness comes from one seeded stream, saved with the model and different on
every replica (:mod:`tfgan_app.randomness`), and both optimizers are saved with their step
counters, so a resumed run continues the same random stream and the same ``d_steps`` cadence.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgan_app import losses as losses_lib
from tfgan_app import remedies, replication, sampling
from tfgan_app.augment import AugmentedTraining
from tfgan_app.builders.infogan import code_size
from tfgan_app.keras_workarounds import KerasFitWorkarounds
from tfgan_app.options import TrainingOptions, active_penalties
from tfgan_app.randomness import SeededTraining
from tfgan_app.sampling import latent_vectors  # noqa: F401  (the one latent sampler)

_DEFAULT_LR = 2e-4

def gan_optimizers(d_optimizer, g_optimizer, float16: bool, d_variables, g_variables):
    """``(d_optimizer, g_optimizer)`` of a GAN's ``compile``, built on their variables.

    Names or instances (default ``Adam(2e-4, beta_1=0.5)``, DCGAN's); they must be two
    instances. Only ``self.optimizer`` is wrapped automatically by Keras: with ``float16``
    (a network computes in float16) both are wrapped in ``LossScaleOptimizer`` here.
    bfloat16 has float32's range: no loss scaling.
    """
    d_opt = keras.optimizers.get(d_optimizer or keras.optimizers.Adam(_DEFAULT_LR, beta_1=0.5))
    g_opt = keras.optimizers.get(g_optimizer or keras.optimizers.Adam(_DEFAULT_LR, beta_1=0.5))
    if d_opt is g_opt:
        raise ValueError("d_optimizer and g_optimizer must be two different optimizer "
                         "instances (each keeps its own state)")
    if float16:
        LSO = keras.optimizers.LossScaleOptimizer
        d_opt, g_opt = (o if isinstance(o, LSO) else LSO(o) for o in (d_opt, g_opt))
    d_opt.build(d_variables)
    g_opt.build(g_variables)
    return d_opt, g_opt


def ema_copy(generator):
    """A non-trainable clone of ``generator`` with its current weights (the EMA's start)."""
    copy = keras.models.clone_model(generator)
    copy.set_weights(generator.get_weights())
    copy.trainable = False
    return copy


def ema_update(ema, generator, decay) -> None:
    """One EMA step: ``ema_w = decay * ema_w + (1 - decay) * w`` for trainable weights; the
    others (batch-norm statistics) are copied."""
    trainable = {id(w) for w in generator.trainable_weights}
    for ema_w, w in zip(ema.weights, generator.weights):
        ema_w.assign(decay * ema_w + (1.0 - decay) * w if id(w) in trainable else w)


def _run_steps(data, epochs, steps_per_epoch) -> int:
    """Training steps of a whole ``fit()`` run: ``epochs`` x steps per epoch."""
    steps = steps_per_epoch
    if steps is None and isinstance(data, tf.data.Dataset):
        card = int(data.cardinality())
        steps = card if card > 0 else None
    if steps is None:
        raise ValueError("instance_noise_steps=None anneals the noise over the whole fit() run, "
                         "which needs a dataset of known length or steps_per_epoch; pass "
                         "compile(instance_noise_steps=N) instead")
    return max(1, int(steps) * int(epochs))


@keras.saving.register_keras_serializable(package="tfgan_app")
class GANModel(AugmentedTraining, SeededTraining, KerasFitWorkarounds, keras.Model):
    """A GAN as one Keras model: ``compile()`` with two optimizers and a loss pair, ``fit()``.

    Args:
      generator: ``keras.Model`` mapping ``z float32 [B, latent_dim]`` (and ``labels int [B]``
        when conditional, as inputs ``[z, labels]``) to samples ``float32 [B, *data_shape]``
        (images: ``[B, H, W, C]`` in ``[-1, 1]``).
      discriminator: ``keras.Model`` mapping samples (and labels, when it has two inputs) to
        logits ``float32 [B, 1]``; for ``acgan``, to ``(logits [B, 1], class_logits [B, K])``.
      latent_dim: size of the latent vector ``z``.
      num_classes: number of classes for a conditional GAN, ``None`` otherwise.
      seed: seed of the training noise (a ``keras.random.SeedGenerator``).

    Example::

        gan = GANModel(tfgan_app.builders.toy_generator(2),
                       tfgan_app.builders.toy_discriminator(), latent_dim=2)
        gan.compile(d_optimizer=keras.optimizers.Adam(0.05),
                    g_optimizer=keras.optimizers.Adam(0.005), loss="modified")
        gan.fit(dataset, epochs=20)
        points = gan.generate(1000, seed=0)
    """

    def __init__(self, generator, discriminator, latent_dim, num_classes=None, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(generator, keras.Model) or not isinstance(discriminator, keras.Model):
            raise ValueError("generator and discriminator must be keras.Model instances, got "
                             f"{type(generator).__name__} and {type(discriminator).__name__}")
        latent_dim = int(latent_dim)
        if latent_dim <= 0:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim}")
        num_classes = None if num_classes in (None, 0) else int(num_classes)
        self._check_generator(generator, latent_dim, num_classes)
        self.code_size = self._check_code(generator, discriminator, num_classes)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self._seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        # |grad G| of the unscaled generator loss (per replica): tfgan_app.doctor's signal
        self.g_grad_norm_tracker = keras.metrics.Mean(name="g_grad_norm")
        # InfoGAN: CE(c, Q(G(z))) of the categorical code (only with one)
        self.info_loss_tracker = keras.metrics.Mean(name="info_loss")
        self.ema_generator = None
        self._init_augmentation()  # tfgan_app.augment: p, its metrics, its saved state
        # Both sub-models are built; mark the wrapper built so fit() (also under a strategy)
        # does not try to build it symbolically by calling it on a data batch.
        self.built = True

    def _check_generator(self, generator, latent_dim, num_classes):
        """Refuse a generator whose inputs do not fit ``latent_dim`` and ``num_classes``."""
        g_inputs = list(generator.inputs or [])
        if not g_inputs:
            return
        z_dim = g_inputs[0].shape[-1]
        if z_dim is not None and z_dim != latent_dim:
            raise ValueError(f"the generator takes latent vectors of size {z_dim}, "
                             f"but latent_dim={latent_dim}")
        if num_classes is None and len(g_inputs) != 1:
            raise ValueError("the generator has several inputs ([z, labels]?) but "
                             "num_classes is not set")
        if num_classes is not None and len(g_inputs) != 2:
            raise ValueError(f"num_classes={num_classes} needs a conditional generator "
                             f"with inputs [z, labels]; it has {len(g_inputs)} input(s)")

    @staticmethod
    def _check_code(generator, discriminator, num_classes) -> int:
        """The generator's categorical code size (0: none); refuse a discriminator without
        the matching code head, or a conditional model with a code."""
        size = code_size(generator)
        if not size:
            return 0
        if num_classes is not None:
            raise ValueError("a categorical code (InfoGAN) is for unconditional GANs; this "
                             f"model has num_classes={num_classes}")
        outs = list(discriminator.outputs or [])
        if len(outs) != 2 or outs[1].shape[-1] != size:
            raise ValueError(f"the generator has a categorical code of {size} values, so the "
                             "discriminator must return [logits, code_logits [B, "
                             f"{size}]] (tfgan_app.builders.with_code_head); it returns "
                             f"{[tuple(o.shape) for o in outs]}")
        return size

    # ------------------------------------------------------------------ Keras plumbing

    def call(self, inputs, training=False):
        """The generator: ``z`` (or ``[z, labels]``) to samples."""
        return self.generator(inputs, training=training)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker,
                self.d_fake_tracker, self.g_grad_norm_tracker,
                *([self.info_loss_tracker] if getattr(self, "code_size", 0) else []),
                *self.augment_metrics()]

    @property
    def d_conditional(self) -> bool:
        """Whether the discriminator takes ``[x, labels]``."""
        return self.num_classes is not None and len(self.discriminator.inputs or []) == 2

    def d_conditioning(self, labels):
        """What the discriminator takes beside ``x``: ``labels`` when it takes ``[x, labels]``,
        else ``None`` (for penalties that call the discriminator themselves)."""
        return labels if self.d_conditional else None

    def compile(self, d_optimizer=None, g_optimizer=None, *, run_eagerly=False, **options):
        """Configure training: two optimizers and the training options.

        Args:
          d_optimizer, g_optimizer: Keras optimizers (names or instances); default
            ``Adam(2e-4, beta_1=0.5)`` (DCGAN). Built here, on the models' variables, so call
            ``compile`` inside a ``tf.distribute`` strategy's scope when using one.
          run_eagerly: passed to ``keras.Model.compile`` (debugging).
          **options: any training option of :func:`tfgan_app.options.training_options`
            (README, "Settings and training options"): the loss pair and its options,
            ``d_steps`` (k of Algorithm 1), the penalties of :mod:`tfgan_app.penalties`, the
            remedies of :mod:`tfgan_app.remedies`, ``ema_decay`` (a weight-averaged copy of G
            in ``self.ema_generator`` that :meth:`generate` and exports use), ``jit_compile``
            and ``steps_per_execution``. Validated together into ``self.options``.

        Raises:
          TypeError: an unknown option (the message lists the valid ones).
          ValueError: an invalid value, or options that do not fit the model.
        """
        opts = TrainingOptions(**options)
        super().compile(optimizer=None, jit_compile=opts.jit_compile,
                        steps_per_execution=opts.steps_per_execution, run_eagerly=run_eagerly)
        self.gan_loss = losses_lib.get(opts.loss, **opts.loss_options)
        if self.gan_loss.needs_aux and self.num_classes is None:
            raise ValueError("the 'acgan' loss needs a conditional model (num_classes) whose "
                             "discriminator returns (logits, class_logits)")
        if opts.info_weight is not None and not self.code_size:
            raise ValueError("info_weight is InfoGAN's weight and needs a generator with a "
                             "categorical code (setting categorical_code, or "
                             "tfgan_app.builders.with_categorical_code); without a code, "
                             "leave it unset (--set info_weight=null)")
        if self.code_size and self.gan_loss.needs_aux:
            raise ValueError("the 'acgan' loss needs class labels; a categorical code "
                             "(InfoGAN) is for unconditional GANs")
        # The loss's options are inside its config: one source of truth when reloaded.
        self.options = opts.replace(loss=self.gan_loss.get_config(), loss_options={})
        self._info_weight = (1.0 if opts.info_weight is None else opts.info_weight
                             ) if self.code_size else 0.0
        self.d_optimizer, self.g_optimizer = gan_optimizers(
            d_optimizer, g_optimizer, self._computes_in_float16(),
            self.discriminator.trainable_variables, self.generator.trainable_variables)
        self._penalties = active_penalties(self.options)
        self._compile_augmentation(self.options)
        self._noise_horizon = self.options.instance_noise_steps
        if opts.ema_decay is not None and getattr(self, "ema_generator", None) is None:
            self.ema_generator = ema_copy(self.generator)

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``. With ``instance_noise`` on and ``instance_noise_steps=None``,
        the noise anneals over this call's whole run: ``epochs`` x steps per epoch (from
        ``steps_per_epoch`` or the dataset's length), counted from step 0."""
        if getattr(self, "options", None) is not None and self.options.instance_noise > 0 \
                and self.options.instance_noise_steps is None:
            horizon = _run_steps(args[0] if args else kwargs.get("x"),
                                 kwargs.get("epochs", args[2] if len(args) > 2 else 1),
                                 kwargs.get("steps_per_epoch"))
            if horizon != self._noise_horizon:
                self._noise_horizon = horizon
                self.train_function = None  # retrace with the new horizon
        return super().fit(*args, **kwargs)

    def _computes_in_float16(self) -> bool:
        return any(getattr(layer, "compute_dtype", None) == "float16"
                   for net in (self.generator, self.discriminator)
                   for layer in net._flatten_layers())

    def get_compile_config(self):
        if not getattr(self, "compiled", False) or getattr(self, "options", None) is None:
            return None
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            **self.options.as_dict(),
        }

    def compile_from_config(self, config):
        config = dict(config)
        d_opt = keras.optimizers.deserialize(config.pop("d_optimizer"))
        g_opt = keras.optimizers.deserialize(config.pop("g_optimizer"))
        self.compile(d_optimizer=d_opt, g_optimizer=g_opt, **config)

    def get_config(self):
        return {
            "name": self.name,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "seed": self._seed,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        generator = keras.saving.deserialize_keras_object(config.pop("generator"),
                                                          custom_objects=custom_objects)
        discriminator = keras.saving.deserialize_keras_object(config.pop("discriminator"),
                                                              custom_objects=custom_objects)
        return cls(generator=generator, discriminator=discriminator, **config)

    # ------------------------------------------------------------------ training

    def _unpack(self, data):
        if isinstance(data, dict):
            raise ValueError("GANModel expects a dataset of images or (images, labels) tuples, "
                             "got a dict")
        if isinstance(data, (tuple, list)):
            real = data[0]
            labels = data[1] if len(data) > 1 else None
        else:
            real, labels = data, None
        if self.num_classes is not None:
            if labels is None:
                raise ValueError(f"this GAN is conditional (num_classes={self.num_classes}) "
                                 "but the dataset yields no labels: use with_labels=True")
            labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        else:
            labels = None
        expected = tuple(self.generator.outputs[0].shape[1:]) if self.generator.outputs else None
        if expected is not None and real.shape.rank is not None:
            got = tuple(real.shape[1:])
            if len(got) != len(expected) or any(
                    a is not None and b is not None and a != b for a, b in zip(got, expected)):
                raise ValueError(f"the dataset yields examples of shape {got} but the generator "
                                 f"produces {expected}")
        if not real.dtype.is_floating:
            raise ValueError(f"real data must be floating point (images scaled to [-1, 1]), got "
                             f"{real.dtype.name}; use tfgan_app.data to build the pipeline")
        return real, labels

    def _noise(self, batch):
        return self.sample_latent(batch)

    def _global_logits(self, *logits):
        return replication.global_logits(self.gan_loss.name, *logits)

    def _g_inputs(self, z, labels):
        return z if self.num_classes is None else [z, labels]

    def _d_inputs(self, x):
        """``x`` augmented (:mod:`tfgan_app.augment`) plus the current instance noise (each the
        identity when off)."""
        x = self.augment_images(x)
        if self.options.instance_noise <= 0:
            return x
        std = remedies.instance_noise_std(self.d_optimizer.iterations,
                                          self.options.instance_noise, self._noise_horizon)
        return remedies.add_instance_noise(x, std, self.next_seed())

    def _d_forward(self, x, labels, training=True, call=None):
        x = self._d_inputs(x) if training else x
        call = call or (lambda inputs: self.discriminator(inputs, training=training))
        out = call([x, labels] if self.d_conditional else x)
        if self.gan_loss.needs_aux or self.code_size:
            logits, class_logits = out
            return tf.cast(logits, tf.float32), tf.cast(class_logits, tf.float32)
        if isinstance(out, (list, tuple)):
            out = out[0]
        return tf.cast(out, tf.float32), None

    def _loss_ctx(self, labels, cls_real=None, cls_fake=None):
        if not self.gan_loss.needs_aux:
            return {}
        return {"one_hot_labels": tf.one_hot(labels, self.num_classes),
                "class_logits_real": cls_real, "class_logits_fake": cls_fake}

    def _d_output_mean(self, logits):
        return tf.reduce_mean(tf.sigmoid(logits) if self.gan_loss.sigmoid else logits)

    def discriminator_loss(self, real, labels, training=True):
        """Discriminator loss and its pieces on one batch (also used by tests and benchmarks).

        Returns ``(loss, d_real_logits, d_fake_logits)``; the loss includes the penalties.
        """
        batch = tf.shape(real)[0]
        z = self._noise(batch)
        fake = self.generator(self._g_inputs(z, labels), training=training)
        fake = tf.cast(fake, real.dtype)
        d_real, cls_real = self._d_forward(real, labels, training)
        d_fake, cls_fake = self._d_forward(fake, labels, training)
        g_real, g_fake = self._global_logits(d_real, d_fake)
        loss = self.gan_loss.discriminator_loss(g_real, g_fake,
                                                **self._loss_ctx(labels, cls_real, cls_fake))
        loss += self._info_term(z, cls_fake)
        for penalty in self._penalties:  # tfgan_app.penalties, in registration order
            loss += penalty(self, real, fake, labels)
        return loss, d_real, d_fake

    def generator_loss(self, real, labels, training=True):
        """Generator loss on one batch: fresh noise, the real batch's labels. A scalar."""
        batch = tf.shape(real)[0]
        z = self._noise(batch)
        fake = self.generator(self._g_inputs(z, labels), training=training)
        return self.adversarial_generator_loss(real, tf.cast(fake, real.dtype), labels, training,
                                               z=z)

    def _info_term(self, z, code_logits):
        """InfoGAN's ``info_weight x CE(c(z), code_logits)`` (0 without a categorical code);
        the cross-entropy is logged as ``info_loss``."""
        if not self.code_size:
            return 0.0
        ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            sampling.categorical_code(z, self.code_size), code_logits))
        self.info_loss_tracker.update_state(ce)
        return self._info_weight * ce

    def adversarial_generator_loss(self, real, fake, labels, training=True, z=None):
        """The loss pair's generator loss for generated ``fake`` (through the unrolled
        discriminator when that remedy is on), plus InfoGAN's term for the latent vectors
        ``z`` of ``fake`` when the generator has a categorical code. A scalar."""
        call = None
        if self.options.unrolled_steps > 0 and training:
            call = self._unrolled_discriminator(real, fake, labels)
        d_fake, cls_fake = self._d_forward(fake, labels, training, call)
        # Only the relativistic loss uses D(real) in the generator loss.
        d_real = (self._d_forward(real, labels, training, call)[0]
                  if self.gan_loss.name == "relativistic" else d_fake)
        d_real, d_fake = self._global_logits(d_real, d_fake)
        loss = self.gan_loss.generator_loss(d_real, d_fake,
                                            **self._loss_ctx(labels, None, cls_fake))
        return loss if z is None else loss + self._info_term(z, cls_fake)

    def _unrolled_discriminator(self, real, fake, labels):
        """The discriminator after ``unrolled_steps`` differentiable steps on its loss against
        this batch (real and the generator's current ``fake``), as a call function."""
        lr = self.options.unrolled_lr
        if lr is None:
            lr = self.d_optimizer.learning_rate

        def d_loss(call):
            d_real, cls_real = self._d_forward(real, labels, True, call)
            d_fake, cls_fake = self._d_forward(fake, labels, True, call)
            return self.gan_loss.discriminator_loss(
                d_real, d_fake, **self._loss_ctx(labels, cls_real, cls_fake))

        return remedies.unrolled_discriminator_weights(self.discriminator, d_loss,
                                                       self.options.unrolled_steps, lr)

    def _d_step(self, real, labels):
        with tf.GradientTape() as tape:
            d_loss, d_real, d_fake = self.discriminator_loss(real, labels)
            # Keras sums gradients over replicas: scale the per-replica mean
            # (tfgan_app.replication); then
            # the loss scale of a LossScaleOptimizer (mixed_float16; identity otherwise).
            scaled = self.d_optimizer.scale_loss(d_loss / replication.num_replicas())
        grads = tape.gradient(scaled, self.discriminator.trainable_variables)
        self.d_optimizer.apply(grads, self.discriminator.trainable_variables)
        if self.options.weight_clip is not None:
            losses_lib.clip_weights(self.discriminator.trainable_variables, self.options.weight_clip)
        return d_loss, d_real, d_fake

    def _g_loss_and_grads(self, real, labels):
        with tf.GradientTape() as tape:
            g_loss = self.generator_loss(real, labels)
            scaled = self.g_optimizer.scale_loss(g_loss / replication.num_replicas())
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        # Undo the 1/N and the loss scale: the norm of this replica's gradient of g_loss.
        unscale = float(replication.num_replicas()) / tf.cast(
            getattr(self.g_optimizer, "dynamic_scale", 1.0), tf.float32)
        # A mixed_float16 step whose loss scale overflowed has non-finite gradients that the
        # LossScaleOptimizer skips: that step is left out of the mean, not reported as inf.
        norm = tf.linalg.global_norm(
            [tf.cast(g, tf.float32) for g in grads if g is not None]) * unscale
        finite = tf.math.is_finite(norm)
        self.g_grad_norm_tracker.update_state(tf.where(finite, norm, 0.0),
                                              sample_weight=tf.cast(finite, tf.float32))
        return g_loss, grads

    def _g_step(self, real, labels):
        g_loss, grads = self._g_loss_and_grads(real, labels)
        self.g_optimizer.apply(grads, self.generator.trainable_variables)
        if self.options.ema_decay is not None:
            self._update_ema()
        return g_loss

    def _g_step_if(self, do_g, real, labels):
        """The generator step when ``do_g`` (the same on every replica), else ``g_loss = 0``.

        On one device (and wherever the strategy needs no ``merge_call``) this is a ``tf.cond``
        around :meth:`_g_step`. Strategies that synchronise through ``merge_call``
        (``MirroredStrategy``/``MultiWorkerMirroredStrategy`` outside all-GPU XLA) refuse a
        synchronisation point -- the optimizer's gradient all-reduce -- inside a ``tf.cond``
        in replica context, so there the gradients are computed under the condition and
        applied under the same condition in cross-replica context, the way Keras'
        ``LossScaleOptimizer`` applies its conditional updates.
        """
        if not replication.needs_merge_call():
            return tf.cond(do_g, lambda: self._g_step(real, labels),
                           lambda: tf.constant(0.0, tf.float32))
        variables = self.generator.trainable_variables
        g_loss, grads = tf.cond(
            do_g, lambda: self._g_loss_and_grads(real, labels),
            lambda: (tf.constant(0.0, tf.float32), [tf.zeros_like(v) for v in variables]))

        replication.apply_if(do_g, self.g_optimizer, grads, variables)
        if self.options.ema_decay is not None:
            with tf.control_dependencies([g_loss]):
                tf.cond(do_g, lambda: self._ema_op(), lambda: tf.no_op())
        return g_loss

    def _ema_op(self):
        self._update_ema()
        return tf.no_op()

    def _update_ema(self):
        ema_update(self.ema_generator, self.generator, self.options.ema_decay)

    def train_step(self, data):
        if not hasattr(self, "gan_loss"):
            raise RuntimeError("call compile() before fit()")
        real, labels = self._unpack(data)
        d_loss, d_real, d_fake = self._d_step(real, labels)
        self.update_augment_p(d_real)  # ADA's r_t and p (tfgan_app.augment); no-op when off
        if self.options.d_steps == 1:
            g_loss = self._g_step(real, labels)
            g_weight = 1.0
        else:
            do_g = tf.equal(self.d_optimizer.iterations % self.options.d_steps, 0)
            g_loss = self._g_step_if(do_g, real, labels)
            g_weight = tf.cast(do_g, tf.float32)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss, sample_weight=g_weight)
        self.d_real_tracker.update_state(self._d_output_mean(d_real))
        self.d_fake_tracker.update_state(self._d_output_mean(d_fake))
        return self._distributed_logs({m.name: m.result() for m in self.metrics})

    def test_step(self, data):
        real, labels = self._unpack(data)
        d_loss, d_real, d_fake = self.discriminator_loss(real, labels, training=False)
        g_loss = self.generator_loss(real, labels, training=False)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(self._d_output_mean(d_real))
        self.d_fake_tracker.update_state(self._d_output_mean(d_fake))
        return self._distributed_logs({m.name: m.result() for m in self.metrics})

    # ------------------------------------------------------------------ sampling

    @property
    def sampling_generator(self):
        """The generator used for sampling and export: the EMA copy when enabled."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def generate(self, n, labels=None, seed=None, batch_size=1024, use_ema=True):
        """Draw ``n`` samples from the generator in inference mode.

        Args:
          n: number of samples.
          labels: class labels ``int [n]`` for a conditional model; default
            ``arange(n) % num_classes``. Not allowed for an unconditional model.
          seed: int; the same seed gives the same samples (latent vectors from
            :func:`tfgan_app.sampling.latent_vectors`, the one latent sampler). ``None``
            draws a random seed.
          batch_size: generator batch size.
          use_ema: sample from the EMA generator when ``compile(ema_decay=...)`` enabled it.

        Returns:
          ``np.ndarray float32 [n, *data_shape]`` (images in ``[-1, 1]``).
        """
        gen = self.sampling_generator if use_ema else self.generator
        return sampling.generate(gen, self.latent_dim, n, num_classes=self.num_classes,
                                 labels=labels, seed=seed, batch_size=batch_size)
