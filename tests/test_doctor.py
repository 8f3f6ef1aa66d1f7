"""The training doctor (issue #17): each diagnosis fires past its threshold on a constructed
history and not on a healthy one; the callback's signals; non-finite values stop training with
the backup kept; ``tfgan-app doctor RUN``; the closed loop's restarts."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tfgan_app.doctor import rules
from tfgan_app.doctor.rules import THRESHOLDS, diagnose

E = 60  # epochs of the constructed histories (warm-up: 3 epochs, window: 6)


def healthy(epochs=E):
    """A history as a healthy run logs it: slowly moving losses, |grad G| rising, every mode,
    D at about 0.6 / 0.4, no overfitting."""
    t = np.arange(epochs)
    return {"epoch": t.tolist(),
            "d_loss": (1.2 + 0.02 * np.sin(t / 7)).tolist(),
            "g_loss": (0.9 + 0.02 * np.cos(t / 7)).tolist(),
            "d_real": [0.6] * epochs, "d_fake": [0.4] * epochs,
            "g_grad_norm": (1.0 + 0.01 * t).tolist(),
            "doctor_modes": [1.0] * epochs, "doctor_overfit": [0.05] * epochs,
            "doctor_probe": [1.0] * epochs}


CTX = {"loss": "modified", "d_lr": 2e-4, "g_lr": 2e-4, "epochs": E}


def names(history, context=CTX, thresholds=None):
    return [d["name"] for d in diagnose(history, context, thresholds)]


def test_healthy_history_gets_no_diagnosis():
    assert diagnose(healthy(), CTX) == []


def _vanishing(ratio, d_fake, start=10):
    h = healthy()
    for i in range(start, E):
        h["g_grad_norm"][i] = ratio * max(h["g_grad_norm"][:start])
        h["d_fake"][i] = d_fake
    return h


def test_vanishing_gradients_fires_below_its_thresholds_only():
    r, f = THRESHOLDS["vanish_ratio"], THRESHOLDS["vanish_d_fake"]
    ctx = {**CTX, "loss": "minimax"}
    found = diagnose(_vanishing(r * 0.5, f * 0.1), ctx)
    assert [d["name"] for d in found] == ["vanishing_gradients"]
    assert found[0]["epoch"] == 11 and found[0]["remedy"] == {"loss": "modified"}
    assert "--set loss=modified" in found[0]["message"] and "minimax" in found[0]["message"]
    assert names(_vanishing(r * 1.5, f * 0.1), ctx) == []   # gradient not small enough
    assert names(_vanishing(r * 0.5, f * 2.0), ctx) == []   # D does not reject G's samples
    # a Wasserstein critic's score is no probability: the gradient ratio alone decides
    assert names(_vanishing(r * 0.5, 5.0), {**ctx, "loss": "wasserstein"}) == [
        "vanishing_gradients"]
    # ... unless a gradient penalty holds D's gradient near norm 1 (WGAN-GP): G's falls from a
    # first-epoch peak taken before the penalty holds, and that is no failure
    wgan_gp = {**ctx, "loss": "wasserstein", "gradient_penalty": 10.0}
    assert names(_vanishing(r * 0.5, 5.0), wgan_gp) == []
    assert rules.context_from_settings({"loss": "wasserstein", "gradient_penalty": 10.0})[
        "gradient_penalty"] == 10.0


def test_patience_and_warmup():
    h = _vanishing(0.001, 1e-4, start=10)
    p = THRESHOLDS["patience"]
    for i in range(10 + p - 1, E):  # only p - 1 consecutive epochs below the threshold
        h["g_grad_norm"][i] = 2.0
        h["d_fake"][i] = 0.4
    assert names(h, {**CTX, "loss": "minimax"}) == []
    early = _vanishing(0.001, 1e-4, start=1)  # from the second epoch: after the warm-up
    found = diagnose(early, {**CTX, "loss": "minimax"})
    assert found[0]["epoch"] == rules.warmup(E) + 1


@pytest.mark.parametrize("key,threshold", [("doctor_modes", "collapse_modes"),
                                           ("doctor_classes", "collapse_classes"),
                                           ("doctor_diversity", "collapse_diversity")])
def test_mode_collapse_fires_below_its_threshold_when_not_improving(key, threshold):
    h = healthy()
    h.pop("doctor_modes")
    h[key] = [THRESHOLDS[threshold] * 1.1] * E
    assert names(h) == []
    h[key] = [THRESHOLDS[threshold] * 0.9] * E
    found = diagnose(h, CTX)
    assert [d["name"] for d in found] == ["mode_collapse"]
    # CTX: no lr decay; the packed, decayed recipe of the ring/grid presets
    assert found[0]["remedy"] == {"discriminator.pack": 2, "lr_decay": "linear"}
    ctx = {**CTX, "g_lr": 5e-3, "d_lr": 1e-3, "smoothing": 0.0, "lr_decay": "linear", "pack": 2}
    assert diagnose(h, ctx)[0]["remedy"] == {  # a faster G slowed, smoothing restored
        "discriminator.pack": 4, "g_lr": 1e-3, "loss_options.label_smoothing": 0.25}
    # low but rising (early training): no diagnosis
    gain = 1 + 2 * THRESHOLDS["collapse_gain"] / THRESHOLDS["patience"]
    h[key] = [THRESHOLDS[threshold] * 0.05 * gain ** i for i in range(E)]
    assert h[key][-1] > THRESHOLDS[threshold] and names(h) == []


def test_mixture_modes_of_sharp_samples_are_judged_only_when_enough_are_sharp():
    """``doctor_modes_hq`` (modes among high-quality samples) says nothing while few samples
    are high quality (a young generator); the same value with enough of them is collapse."""
    h = healthy()
    h["doctor_modes_hq"] = [0.25] * E
    h["doctor_quality"] = [THRESHOLDS["collapse_quality"] * 0.5] * E
    assert names(h) == []
    h["doctor_quality"] = [THRESHOLDS["collapse_quality"] * 1.5] * E
    found = diagnose(h, CTX)
    assert names(h) == ["mode_collapse"] and "high-quality samples" in found[0]["message"]


def test_stuck_generator_is_not_mode_collapse():
    h = _vanishing(0.001, 1e-4)
    h["doctor_diversity"] = [1.0] * 10 + [0.1] * (E - 10)
    assert names(h, {**CTX, "loss": "minimax"}) == ["vanishing_gradients"]


def test_oscillation_fires_on_jumping_d_loss():
    h = healthy()
    amp = THRESHOLDS["oscillation"] * 0.6  # jumps of 2 x amp about 1: above the threshold
    h["d_loss"] = [1.0 + (amp if i % 2 else -amp) if i >= 20 else 1.0 for i in range(E)]
    found = diagnose(h, CTX)
    assert [d["name"] for d in found] == ["oscillation"]
    assert found[0]["remedy"] == {"d_lr": 2e-5}
    small = THRESHOLDS["oscillation"] * 0.2
    h["d_loss"] = [1.0 + (small if i % 2 else -small) for i in range(E)]
    assert names(h) == []


def test_oscillation_fires_on_a_swinging_verdict_of_d():
    """D's verdict on generated data jumping between 0.002 and 0.2 (log-odds about 4.8 apart)
    while d_loss barely moves: oscillation with a sigmoid loss; the same numbers are no
    probability for the Wasserstein loss, which is not judged on them."""
    h = healthy()
    h["d_fake"] = [0.2 if i % 2 else 0.002 for i in range(E)]
    assert rules.swing(h["d_fake"][:6], 6) == pytest.approx(
        abs(np.log(0.2 / 0.8) - np.log(0.002 / 0.998)), rel=1e-6)
    found = diagnose(h, CTX)
    assert [d["name"] for d in found] == ["oscillation"] and "log-odds" in found[0]["message"]
    assert names(h, {**CTX, "loss": "wasserstein"}) == []
    h["d_fake"] = [0.3 if i % 2 else 0.2 for i in range(E)]  # 0.54 in log-odds: below 1
    assert names(h) == []


def test_oscillation_measure():
    assert rules.oscillation([1.0, 1.5, 1.0, 1.5, 1.0], 5) == pytest.approx(0.5 / 1.2)
    assert rules.oscillation([1.0, 1.1, 1.2, 1.3, 1.4], 5) == 0.0  # a trend
    # below the floor, changes count against LOSS_FLOOR, not against tiny magnitudes
    assert rules.oscillation([0.01, 0.02, 0.01, 0.02, 0.01], 5) == pytest.approx(
        0.01 / rules.LOSS_FLOOR)
    assert rules.LOSS_FLOOR < 1.2
    assert rules.oscillation([1.0, 2.0], 5) == 0.0  # not a full window yet


def test_discriminator_overfitting_fires_above_its_threshold():
    h = healthy()
    h["doctor_overfit"] = [THRESHOLDS["overfit"] * 0.9] * E
    assert names(h) == []
    h["doctor_overfit"] = [0.05] * 30 + [THRESHOLDS["overfit"] * 1.2] * (E - 30)
    found = diagnose(h, CTX)
    assert [d["name"] for d in found] == ["discriminator_overfitting"]
    assert found[0]["epoch"] == 31
    assert found[0]["remedy"] == {"augment": "ada", "ada_target": 0.6}


def test_a_harmless_gap_between_training_and_held_out_data_is_not_named():
    """The digits-dcgan preset's D (800 epochs, before its InfoGAN code) judges held-out digits
    0.3 -> 0.7 of the way towards generated ones while its samples keep improving
    (benchmarks/doctor.py):
    not a failure. Past 1 -- unseen real data rejected like generated data -- it is."""
    h = healthy()
    h["doctor_overfit"] = np.linspace(0.3, 0.7, E).tolist()
    assert names(h) == []
    h["doctor_overfit"] = np.linspace(0.3, 1.5, E).tolist()
    found = diagnose(h, CTX)
    assert [d["name"] for d in found] == ["discriminator_overfitting"]
    assert h["doctor_overfit"][found[0]["epoch"] - 1] > 1.0


class _StubGAN:
    """What the doctor's probe reads of a GANModel: a generator returning fixed ``images``
    and a D scoring each image by its mean pixel."""
    latent_dim, num_classes, d_conditional = 4, None, False

    def __init__(self, images):
        import tensorflow as tf

        self.generator = lambda z, training=False: tf.constant(images)

    def _d_forward(self, x, labels, training=False):
        import tensorflow as tf

        return tf.reduce_mean(x, axis=[1, 2, 3])[:, None], None


def test_overfitting_needs_the_independent_judge_to_tell_samples_from_unseen_real_data():
    """Past 1, D's held-out gap is named only where the data-copying rate (an independent
    judge, in the classifier's features) tells G's samples from unseen real data: farther from
    the training images (the 64-digit case: 0.24-0.27) or nearer (G copies). A generator as
    good as the data (0.5: the InfoGAN preset's 0.50-0.54) drives the gap to 1 whatever D
    learns, and is not named."""
    band = THRESHOLDS["overfit_copying"]
    h = healthy()
    h["doctor_overfit"] = [0.05] * 30 + [THRESHOLDS["overfit"] * 1.2] * (E - 30)
    h["doctor_copying"] = [0.5 + 0.9 * band] * E
    assert names(h) == []
    h["doctor_copying"] = [0.5 - 0.9 * band] * E
    assert names(h) == []
    for copying, words in ((0.5 - 1.5 * band, "farther from"), (0.5 + 1.5 * band, "nearer to")):
        h["doctor_copying"] = [copying] * E
        found = diagnose(h, CTX)
        assert [d["name"] for d in found] == ["discriminator_overfitting"], copying
        assert found[0]["epoch"] == 31 and words in found[0]["message"], found[0]["message"]
    # the judge alone names nothing: G's samples far from the data while D keeps its gap small
    h["doctor_overfit"] = [0.5] * E
    h["doctor_copying"] = [0.1] * E
    assert names(h) == []


def test_copying_rate_tells_copies_from_unseen_real_data_and_from_noise():
    """``doctor_copying`` on the digits in the offline classifier's features: a generator
    returning training images scores near 1, one returning unseen real digits about 0.5, noise
    near 0."""
    import tfgan_app as tg
    from tfgan_app.evaluation.classifiers import digits_classifier

    x, _ = tg.data.load_digits_arrays("train")
    x = x[np.random.default_rng(0).permutation(len(x))].astype(np.float32)
    # training data, the probe's held-out batch, and other digits D never saw (one
    # distribution: the digits are stored writer by writer)
    train_x, held, unseen = x[:1000], x[1000:1200], x[1200:1400]
    noise = np.random.default_rng(0).uniform(-1, 1, held.shape).astype(np.float32)

    got = {}
    for name, images in (("copies", train_x[300:500]), ("unseen", unseen), ("noise", noise)):
        doc = tg.callbacks.Doctor(train_x, held, classifier=digits_classifier(), n=200,
                                  verbose=False, share=None)
        doc.set_model(_StubGAN(images))
        doc.on_train_begin()
        got[name] = doc.probe()["doctor_copying"]
    band = THRESHOLDS["overfit_copying"]
    assert got["copies"] > 0.9, got
    assert abs(got["unseen"] - 0.5) < band, got
    assert got["noise"] < 0.5 - band, got
    # without a classifier there is no judge (distances between pixels say little)
    doc = tg.callbacks.Doctor(train_x, held, n=200, verbose=False, share=None)
    doc.set_model(_StubGAN(unseen))
    doc.on_train_begin()
    assert "doctor_copying" not in doc.probe()


def test_image_quality_signal_is_the_confident_rate_over_the_real_batchs():
    """``doctor_quality`` for images: a generator that returns the real batch itself scores
    exactly 1; one that returns uniform noise far less (0.27: the offline digits classifier is
    confident on some noise images, as convnets are)."""
    import tfgan_app as tg
    from tfgan_app.evaluation.classifiers import digits_classifier

    real, _ = tg.data.load_digits_arrays("train")
    real = real[:128].astype(np.float32)
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)

    got = {}
    for name, images in (("real", real), ("noise", noise)):
        doc = tg.callbacks.Doctor(real, real, classifier=digits_classifier(), n=128,
                                  verbose=False, share=None)
        doc.set_model(_StubGAN(images))
        doc.on_train_begin()
        got[name] = doc.probe()["doctor_quality"]
    assert got["real"] == pytest.approx(1.0)
    assert got["noise"] < 0.5, got


def test_divergence_on_exploding_losses_or_gradient():
    h = healthy()
    h["d_loss"][40] = THRESHOLDS["divergence_loss"] * 2
    h["doctor_modes"][41:] = [0.0] * (E - 41)  # what follows a divergence is not named
    found = diagnose(h, CTX)
    assert [d["name"] for d in found] == ["divergence"] and found[0]["epoch"] == 41
    assert found[0]["remedy"] == {"d_lr": 2e-5, "g_lr": 2e-5}
    h = healthy()
    h["g_grad_norm"][2] = h["g_grad_norm"][0] * THRESHOLDS["divergence_grad"] * 2
    assert names(h) == ["divergence"]  # divergence needs no warm-up
    h = healthy()
    h["d_loss"][40:] = [THRESHOLDS["divergence_loss"] * 0.5] * (E - 40)  # large, below
    assert names(h) == []


def test_thresholds_can_be_overridden():
    h = healthy()
    h["doctor_overfit"] = [0.3] * E
    assert names(h) == []
    assert names(h, thresholds={"overfit": 0.2}) == ["discriminator_overfitting"]


# ----------------------------------------------------------------------- with a real model

def _toy_gan(lr=1e-3, loss="modified"):
    import keras

    import tfgan_app as tg

    keras.utils.set_random_seed(0)
    spec = {"builder": "mlp", "hidden_units": [16]}
    gan = tg.GANModel(tg.builders.build("generator", spec, data_shape=(2,), latent_dim=2),
                      tg.builders.build("discriminator", spec, data_shape=(2,)), latent_dim=2,
                      seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(lr), g_optimizer=keras.optimizers.Adam(lr),
                loss=loss, jit_compile=False)
    return gan


def _points(pts):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(np.asarray(pts, np.float32)).batch(
        128, drop_remainder=True)


def test_gan_logs_generator_gradient_norm():
    import tensorflow as tf

    gan = _toy_gan()
    real = tf.random.stateless_normal([64, 2], seed=[1, 2])
    g_loss, grads = gan._g_loss_and_grads(real, None)
    expected = float(tf.linalg.global_norm(grads))
    assert gan.g_grad_norm_tracker.result().numpy() == pytest.approx(expected, rel=1e-5)
    assert expected > 0


def test_doctor_callback_records_signals_on_a_ring():
    import tfgan_app as tg
    from tfgan_app.data.toy import ring_modes, sample_toy

    pts, _ = sample_toy("ring", n=2048, seed=0)
    held, _ = sample_toy("ring", n=512, seed=1)
    ds = _points(pts)
    gan = _toy_gan()
    doc = tg.callbacks.Doctor(pts, held, modes=ring_modes(), mode_std=0.01, every=2, n=128,
                              verbose=False, share=None)  # no time budget: every due epoch
    logs = gan.fit(ds, epochs=4, verbose=0, callbacks=[doc]).history
    for key in ("g_grad_norm", "doctor_modes", "doctor_d_accuracy", "doctor_overfit",
                "doctor_grad_ratio", "doctor_oscillation", "doctor_probe"):
        assert len(logs[key]) == 4, key
    assert logs["doctor_probe"] == [1.0, 1.0, 0.0, 1.0]  # epoch 1, then every 2 and the 4th
    assert 0.0 <= min(logs["doctor_modes"]) and max(logs["doctor_modes"]) <= 1.0
    assert 0.0 <= min(logs["doctor_d_accuracy"]) <= max(logs["doctor_d_accuracy"]) <= 1.0
    assert min(logs["g_grad_norm"]) > 0
    assert doc.seconds > 0 and doc.summary()["diagnoses"] == doc.diagnoses


def test_collapsed_generator_is_diagnosed_by_the_callback():
    """A generator that puts every sample on one point: mode collapse by nearest-mode
    counts, named once (console) with its remedy."""
    import keras

    import tfgan_app as tg
    from tfgan_app.data.toy import ring_modes, sample_toy

    pts, _ = sample_toy("ring", n=1024, seed=0)
    ds = _points(pts)
    gen = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
        2, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(
            [1.0, 0.0]), trainable=False)])
    disc = tg.builders.build("discriminator", {"builder": "mlp", "hidden_units": [16]},
                             data_shape=(2,))
    gan = tg.GANModel(gen, disc, latent_dim=2)
    gan.compile(g_optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    doc = tg.callbacks.Doctor(pts, modes=ring_modes(), mode_std=0.01, n=128, verbose=False,
                              share=None)
    gan.fit(ds, epochs=9, verbose=0, callbacks=[doc])  # window 5: fires once it has 2 windows
    assert [d["name"] for d in doc.diagnoses] == ["mode_collapse"]
    assert doc.history["doctor_modes"][-1] == pytest.approx(1 / 8)
    assert "0.125 of the modes holding generated samples" in doc.diagnoses[0]["message"]
    assert doc.diagnoses[0]["remedy"]["discriminator.pack"] == 2


def test_time_budget_puts_probes_off_but_judges_the_last_epoch():
    """With a budget no probe fits in (share 1e-9 of the training time), only the first two and
    the last epoch are probed; the losses are still recorded every epoch."""
    import tfgan_app as tg
    from tfgan_app.data.toy import ring_modes, sample_toy

    pts, _ = sample_toy("ring", n=1024, seed=0)
    doc = tg.callbacks.Doctor(pts, modes=ring_modes(), mode_std=0.01, n=128, verbose=False,
                              share=1e-9)
    _toy_gan().fit(_points(pts), epochs=5, verbose=0, callbacks=[doc])
    # the first epoch (set-up and tracing, not counted), the next one (nothing spent yet
    # since), then none until the last
    assert doc.history["doctor_probe"] == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert len(doc.history["d_loss"]) == 5
    with pytest.raises(ValueError, match="share=0"):
        tg.callbacks.Doctor(share=0)


def test_time_budget_counts_from_the_end_of_the_first_epoch(monkeypatch):
    """The budget is a share of the training time after the first epoch: the first epoch's
    tracing (here 100 s of a fake clock, ten later epochs' worth) buys no probes. Each probe
    costs 1 s; with share 0.05 the probes after the first epoch take at most 5% of the later
    epochs' time plus one probe (counting from the start of training, every epoch was
    probed: 10 s of probes in 100 s)."""
    import types

    import keras
    import tfgan_app as tg
    from tfgan_app.data.toy import ring_modes, sample_toy
    from tfgan_app.doctor import callback as module

    clock = [0.0]
    monkeypatch.setattr(module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    class Tick(keras.callbacks.Callback):  # the epoch's training time, before the doctor
        def on_epoch_end(self, epoch, logs=None):
            clock[0] += 100.0 if epoch == 0 else 10.0

    pts, _ = sample_toy("ring", n=1024, seed=0)
    doc = tg.callbacks.Doctor(pts, modes=ring_modes(), mode_std=0.01, n=128, verbose=False,
                              share=0.05)
    real_probe = doc.probe

    def probe():
        clock[0] += 1.0
        return real_probe()

    doc.probe = probe
    _toy_gan().fit(_points(pts), epochs=11, verbose=0, callbacks=[Tick(), doc])
    probes = doc.history["doctor_probe"]
    assert probes[0] == 1.0 and probes[-1] == 1.0  # the first and the last: always
    later = sum(probes[1:-1])  # 1 s each, in 9 epochs of 10 s (+ the probes' own seconds)
    assert later <= 0.05 * (9 * 10.0 + later) + 1.0, probes
    assert 0.0 < later < 9, probes  # within the budget: some, not all


# ----------------------------------------------------------------------- train, CLI, fix

def _ring_settings(**over):
    from tfgan_app import train

    settings = train.resolve_settings("ring", epochs=3, seed=0, **over, overrides=[
        'dataset_options={"n": 2048}', "plot_every=100", "backup_every=1",
        "steps_per_execution=1", "jit_compile=false"])
    if "backup_seconds" in settings:  # a backup after every epoch, however short
        settings["backup_seconds"] = 0.0
    return settings


def test_train_records_signals_and_an_empty_diagnoses_list(tmp_path):
    from tfgan_app import train
    from tfgan_app.utils import read_json

    out = str(tmp_path / "run")
    train.train(_ring_settings(), out, verbose=0)
    history = read_json(os.path.join(out, "history.json"))
    assert len(history["doctor_modes"]) == 3 and len(history["g_grad_norm"]) == 3
    assert read_json(os.path.join(out, "report.json"))["diagnoses"] == []
    assert read_json(os.path.join(out, "doctor.json"))["diagnoses"] == []
    off = str(tmp_path / "off")
    train.train(_ring_settings(doctor="off"), off, verbose=0)
    assert "doctor_modes" not in read_json(os.path.join(off, "history.json"))
    assert "diagnoses" not in read_json(os.path.join(off, "report.json"))


def _digits_as_idx(tmp_path, prefix, split):
    """The digits' ``split`` written as MNIST-style IDX files ``<prefix>-{images,labels}-...``
    (uint8 0..255), and the images as the pipeline reads them back."""
    from test_data import _write_idx

    from tfgan_app.data import load_digits_arrays

    x, y = load_digits_arrays(split)
    pixels = np.round((x[..., 0] + 1) * 127.5).astype(np.uint8)
    paths = (_write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", pixels),
             _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8)))
    return "idx:" + ",".join(paths), pixels.astype(np.float32)[..., None] / 127.5 - 1


def _doctor_batches(name, n=128, **settings):
    from tfgan_app import doctor
    from tfgan_app.data import dataset_by_name

    _, info = dataset_by_name(name, batch_size=64, **settings.get("dataset_options", {}))
    return doctor._real_and_held_out({"dataset": name, "seed": 0, **settings}, info, n)


def _rows(x):
    return {r.tobytes() for r in np.asarray(x, np.float32)}


def test_doctor_takes_real_and_held_out_images_from_the_real_image_source(tmp_path):
    """Image data beyond the digits (MNIST-style IDX files): the real batch comes from the
    evaluation's real-image source, the held-out batch only where D never trains on it."""
    train_name, train_x = _digits_as_idx(tmp_path, "train", "train")
    _, test_x = _digits_as_idx(tmp_path, "t10k", "test")
    real, held, images = _doctor_batches(train_name)
    # the data-copying probe's reference: up to COPY_REFERENCE training images, the first 128
    # of them the fixed real batch
    from tfgan_app.doctor import COPY_REFERENCE

    assert real.shape == (min(len(train_x), COPY_REFERENCE), 8, 8, 1)
    assert images.reference_labels is not None
    assert _rows(real) <= _rows(train_x)  # drawn from the training file ...
    assert len(_rows(real[:128])) == 128 and not _rows(real[:128]) <= _rows(train_x[:128])
    np.testing.assert_array_equal(held, test_x[:128])  # the t10k twin: never trained on

    alone = tmp_path / "alone"  # a t10k file alone is halved: a run on it trains on both halves
    alone.mkdir()
    alone_name, alone_x = _digits_as_idx(alone, "t10k", "test")
    real, held, images = _doctor_batches(alone_name)
    assert images.halves and held is None and _rows(real) <= _rows(alone_x[:len(alone_x) // 2])

    from tfgan_app.data import load_digits_arrays

    real, held, _ = _doctor_batches("digits")
    np.testing.assert_array_equal(held, load_digits_arrays("test")[0][:128])
    assert _doctor_batches("digits:all")[1] is None  # D trains on the test digits too
    assert _doctor_batches("digits", dataset_options={"image_size": 16}) == (None, None, None)


def test_doctor_probes_diversity_classes_and_overfitting_on_idx_images(tmp_path, monkeypatch):
    """A ``tfgan-app train`` run on IDX images gets every image signal: diversity and classes in
    the evaluation classifier's features, quality, and D's held-out gap."""
    from tfgan_app import train
    from tfgan_app.utils import read_json

    monkeypatch.setenv("TFGAN_APP_CACHE_DIR", str(tmp_path / "cache"))
    name, _ = _digits_as_idx(tmp_path, "train", "train")
    _digits_as_idx(tmp_path, "t10k", "test")
    settings = train.resolve_settings("digits-dcgan", epochs=4, seed=0, dataset=name,
                                      overrides=["plot_seconds=0", "jit_compile=false"])
    out = str(tmp_path / "run")
    train.train(settings, out, verbose=0)
    history = read_json(os.path.join(out, "history.json"))
    for key in ("doctor_diversity", "doctor_classes", "doctor_quality", "doctor_overfit",
                "doctor_copying", "doctor_d_accuracy"):
        assert len(history[key]) == 4 and all(np.isfinite(history[key])), key
    # a generator of 4 epochs covers some digits' classes, and spreads in feature space
    assert 0 < history["doctor_diversity"][-1] and 0 < history["doctor_classes"][-1] <= 1
    # the classifier is cached under one file name, although the dataset's name is a path
    cached = sorted(os.listdir(tmp_path / "cache"))
    assert len(cached) == 2 and all((tmp_path / "cache" / f).is_file() for f in cached), cached


def test_non_finite_losses_stop_training_with_divergence_and_keep_the_backup(tmp_path):
    import keras

    from tfgan_app import checkpoint, train
    from tfgan_app.utils import NonFiniteError, read_json

    class Poison(keras.callbacks.Callback):  # NaN weights in G after the second epoch
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                for v in self.model.generator.trainable_variables:
                    v.assign(v * np.nan)

    out = str(tmp_path / "run")
    settings = _ring_settings()
    settings["epochs"] = 5
    # the doctor records the divergence; the TrainingGuard after it stops with the run's message
    with pytest.raises(NonFiniteError, match="training stopped in epoch 3/5: non-finite"):
        train.train(settings, out, verbose=0, extra_callbacks=[Poison()])
    kept = checkpoint.latest_backup(os.path.join(out, "backup"))
    # epoch 2 ended with NaN weights (after the doctor's check): RunBackup did not save it
    assert kept is not None and kept[1]["epoch"] == 1
    doc = read_json(os.path.join(out, "doctor.json"))
    assert [d["name"] for d in doc["diagnoses"]] == ["divergence"] and doc["stopped"]
    assert "--set d_lr=" in doc["diagnoses"][0]["message"]


def _blow_up_d_at(epoch_index):
    """A callback scaling D's output layer by 1e4 as epoch ``epoch_index`` (0-based) begins:
    finite losses far beyond the divergence threshold from that epoch on."""
    import keras

    class BlowUp(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == epoch_index:
                for v in self.model.discriminator.trainable_variables[-2:]:
                    v.assign(v * 1e4)
    return BlowUp()


def test_finite_divergence_is_judged_at_once_whatever_the_time_budget():
    """With a budget no judging fits in (share 1e-9), the epoch that diverges is still judged
    at its end and stops training (the rule alone would wait for the last epoch)."""
    import tfgan_app as tg
    from tfgan_app.data.toy import ring_modes, sample_toy
    from tfgan_app.utils import NonFiniteError

    pts, _ = sample_toy("ring", n=1024, seed=0)
    doc = tg.callbacks.Doctor(pts, modes=ring_modes(), mode_std=0.01, n=128, verbose=False,
                              share=1e-9)
    with pytest.raises(NonFiniteError, match=r"epoch 4/6: divergence since epoch 4: \|d_loss"):
        _toy_gan().fit(_points(pts), epochs=6, verbose=0, callbacks=[doc, _blow_up_d_at(3)])
    assert doc.history["doctor_probe"] == [1.0, 1.0, 0.0, 0.0]  # epochs 3, 4 over budget
    assert max(abs(v) for v in doc.history["d_loss"][:3]) < THRESHOLDS["divergence_loss"]
    assert doc.history["d_loss"][3] > THRESHOLDS["divergence_loss"]
    assert doc.summary()["stopped"].startswith("a finite blow-up in epoch 4 (|d_loss| = ")


def test_finite_divergence_stops_training_and_keeps_the_backup_from_before_it(tmp_path):
    from tfgan_app import checkpoint, train
    from tfgan_app.utils import NonFiniteError, read_json

    out = str(tmp_path / "run")
    settings = _ring_settings()
    settings["epochs"] = 5
    with pytest.raises(NonFiniteError) as info:
        train.train(settings, out, verbose=0, extra_callbacks=[_blow_up_d_at(2)])
    message = str(info.value)
    # (the blow-up passes the threshold of |grad G| or of the losses)
    assert message.startswith("training stopped in epoch 3/5: divergence since epoch 3: |")
    assert "remedy: --set d_lr=" in message and "last healthy state (epoch 2)" in message
    assert info.value.epoch == 3 and set(info.value.quantities) >= {"d_loss", "g_grad_norm"}
    # the diverged epoch 3 was not backed up: the newest backup is epoch 2's, no sign of
    # divergence in its history, and the one before it stays too
    assert sorted(os.listdir(os.path.join(out, "backup"))) == ["ckpt-000001", "ckpt-000002"]
    path, meta = checkpoint.latest_backup(os.path.join(out, "backup"))
    assert meta["epoch"] == 2 and meta["history"]["epoch"] == [0, 1]
    assert [rules.divergence_evidence(meta["history"], i) for i in (0, 1)] == [None, None]
    doc = read_json(os.path.join(out, "doctor.json"))
    assert [d["name"] for d in doc["diagnoses"]] == ["divergence"]
    assert doc["diagnoses"][0]["epoch"] == 3 and "finite blow-up in epoch 3 (|" in doc["stopped"]
    assert not os.path.exists(os.path.join(out, "generator.keras"))


def test_cli_exits_3_on_a_finite_divergence(tmp_path, capsys):
    """`--set d_lr=1e9` on d2l-gaussian: finite losses far beyond 1e3 in epoch 1. The doctor
    stops (exit 3, one line, the diagnosis and its remedy); with it off, the guard only warns
    (tests/test_guards.py)."""
    from tfgan_app.cli import main

    out = tmp_path / "run"
    assert main(["train", "--preset", "d2l-gaussian", "--quiet", "--epochs", "2", "--set",
                 "steps_per_execution=5", "--set", "d_lr=1e9", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("tfgan-app ")]
    assert len(lines) == 1, err
    assert "training stopped in epoch 1/2: divergence since epoch 1: |d_loss| = " in lines[0]
    assert "remedy: --set d_lr=100000000.0" in lines[0]  # 1e9 / 10
    assert "no backup had been written" in lines[0]
    assert not (out / "generator.keras").exists() and not (out / "backup").exists()


def test_cli_doctor_on_a_run_directory(tmp_path, capsys):
    from tfgan_app.cli import main
    from tfgan_app.utils import write_json

    run = tmp_path / "run"
    run.mkdir()
    from tfgan_app import presets

    write_json(str(run / "config.json"), {**presets.get("digits-dcgan"),
                                          "loss": {"name": "minimax"}, "epochs": E})
    write_json(str(run / "history.json"), _vanishing(0.001, 1e-4))
    assert main(["doctor", str(run)]) == 0
    out = capsys.readouterr().out
    assert "vanishing gradients since epoch 11" in out and "--set loss=modified" in out
    assert "stopped or killed" in out
    assert main(["doctor", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in result["diagnoses"]] == ["vanishing_gradients"]
    write_json(str(run / "history.json"), healthy())
    assert main(["doctor", str(run)]) == 0
    assert "no diagnosis" in capsys.readouterr().out
    assert main(["doctor", str(tmp_path / "missing")]) == 2
    assert "error" in capsys.readouterr().err


def test_fix_restarts_with_the_remedy_and_says_what_was_tried(tmp_path, monkeypatch, capsys):
    """Thresholds every run meets: each attempt is diagnosed (vanishing gradients), so the
    loop restarts once with the remedy (recorded in config.json and report.json), then stops
    when the same remedy is asked again, saying what was tried."""
    from tfgan_app.doctor import fix
    from tfgan_app.utils import read_json

    monkeypatch.setitem(THRESHOLDS, "vanish_ratio", 2.0)   # |grad G| is always below 2 x peak
    monkeypatch.setitem(THRESHOLDS, "vanish_d_fake", 2.0)  # and D(G(z)) below 2
    monkeypatch.setitem(THRESHOLDS, "patience", 1)
    monkeypatch.setattr(rules, "MIN_WARMUP", 0)
    out = str(tmp_path / "run")
    result = fix.train(_ring_settings(), out, verbose=0)
    err = capsys.readouterr().err
    # the ring's loss is the non-saturating one: the remedy is instance noise
    assert "Restarting from scratch with --set instance_noise=0.1 (restart 1 of at most 2)" in err
    assert "could not fix the run" in err and "the same remedy again" in err
    assert result["doctor_fixed"] is False
    assert [f["remedy"] for f in result["doctor_fixes"]] == [{"instance_noise": 0.1}]
    assert result["doctor_fixes"][0]["resumed_from"] == 0  # instance noise: from scratch
    config = read_json(os.path.join(out, "config.json"))
    # the last attempt finishes the run with the doctor only watching
    assert config["instance_noise"] == 0.1 and config["doctor"] == "on"
    assert config["doctor_fixes"][0]["diagnosis"] == "vanishing_gradients"
    report = read_json(os.path.join(out, "report.json"))
    assert report["doctor_fixes"] == result["doctor_fixes"] and report["diagnoses"]


def test_fix_resumes_from_the_backup_when_the_remedy_keeps_the_networks(tmp_path, capsys):
    """The saturating loss, thresholds every run meets: the remedy (loss=modified) keeps the
    networks, so the loop resumes from the last backup under the remedied settings (the
    history continues, each epoch once) instead of starting again."""
    import pytest as _pytest

    from tfgan_app.doctor import fix
    from tfgan_app.utils import read_json

    with _pytest.MonkeyPatch.context() as mp:
        mp.setitem(THRESHOLDS, "vanish_ratio", 2.0)
        mp.setitem(THRESHOLDS, "vanish_d_fake", 2.0)
        mp.setitem(THRESHOLDS, "patience", 1)
        mp.setattr(rules, "MIN_WARMUP", 0)
        out = str(tmp_path / "run")
        result = fix.train(_ring_settings(loss="minimax"), out, verbose=0, max_restarts=1)
    err = capsys.readouterr().err
    assert "Resuming from the backup of epoch 1 with --set loss=modified" in err
    assert result["doctor_fixes"][0]["remedy"] == {"loss": "modified"}
    assert result["doctor_fixes"][0]["resumed_from"] == 1
    config = read_json(os.path.join(out, "config.json"))
    assert config["loss"] == "modified" and config["doctor_fixes"] == result["doctor_fixes"]
    assert read_json(os.path.join(out, "history.json"))["epoch"] == [0, 1, 2]
    assert not os.path.isdir(os.path.join(out, "backup"))  # the run finished


_MIRRORED_CHILD = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
import keras
import tfgan_app as tg
from tfgan_app.data.toy import ring_modes, sample_toy

pts, _ = sample_toy("ring", n=1024, seed=0)
held, _ = sample_toy("ring", n=256, seed=1)

def run(strategy):
    keras.utils.set_random_seed(0)
    spec = {"builder": "mlp", "hidden_units": [16]}
    with strategy.scope():
        gan = tg.GANModel(tg.builders.build("generator", spec, data_shape=(2,), latent_dim=2),
                          tg.builders.build("discriminator", spec, data_shape=(2,)),
                          latent_dim=2, seed=0)
        gan.compile(d_optimizer=keras.optimizers.Adam(1e-3),
                    g_optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    doc = tg.callbacks.Doctor(pts, held, modes=ring_modes(), mode_std=0.01, n=128,
                              verbose=False, share=None)
    ds = tf.data.Dataset.from_tensor_slices(pts.astype(np.float32)).batch(128, drop_remainder=True)
    gan.fit(ds, epochs=3, verbose=0, callbacks=[doc])
    return {k: [float(x) for x in v] for k, v in doc.history.items()}, doc.diagnoses

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
two, found = run(mirrored)
one, _ = run(tf.distribute.get_strategy())
json.dump({"replicas": mirrored.num_replicas_in_sync, "two": two, "one": one,
           "diagnoses": found}, sys.stdout)
"""


@pytest.mark.slow  # a fresh TensorFlow process tracing for two replicas
def test_doctor_signals_under_mirrored_strategy():
    """Two logical CPU devices (a fresh process, as tests/test_distribute.py does): under
    MirroredStrategy the doctor's signals are computed every epoch and sane -- |grad G|
    finite, positive and of the size one device measures (each replica's norm over its half
    of the batch), the probes' fractions in [0, 1] -- and a short healthy run is not named."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": repo}
    proc = subprocess.run([sys.executable, "-c", _MIRRORED_CHILD], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["replicas"] == 2
    two, one = got["two"], got["one"]
    for key in ("g_grad_norm", "d_loss", "d_fake", "doctor_modes", "doctor_quality",
                "doctor_d_accuracy", "doctor_overfit", "doctor_grad_ratio", "doctor_probe"):
        assert len(two[key]) == 3 and all(np.isfinite(two[key])), key
    assert min(two["g_grad_norm"]) > 0
    ratio = np.array(two["g_grad_norm"]) / np.array(one["g_grad_norm"])
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    for key in ("doctor_modes", "doctor_quality", "doctor_d_accuracy"):
        assert 0.0 <= min(two[key]) and max(two[key]) <= 1.0, key
    assert two["doctor_probe"] == [1.0, 1.0, 1.0] and got["diagnoses"] == []


def test_the_doctor_watches_without_changing_training():
    """Probing every epoch (its samples, its classifier, its held-out batches) leaves the
    training trajectory bit-identical to a run with the doctor off."""
    import tempfile

    from tfgan_app import train

    def weights(doctor):
        s = train.resolve_settings("digits-dcgan", seed=3, epochs=3, plot_every=1000,
                                   backup_every=1000, plot_seconds=0.0, doctor=doctor)
        with tempfile.TemporaryDirectory() as out:
            r = train.train(s, out, verbose=0)
            assert doctor == "off" or all(r["history"]["doctor_probe"])
            return [w.numpy().copy() for w in r["gan"].generator.weights]

    on, off = weights("on"), weights("off")
    assert all(np.array_equal(a, b) for a, b in zip(on, off))


def test_cifar10_preset_without_an_offline_image_source_is_judged_on_losses_and_gradients(
        tmp_path):
    """CIFAR-10 needs a download, so its real images are not there for the doctor: the
    cifar10-dcgan recipe (here on CIFAR-shaped 32x32 RGB images from a folder, which has no
    real-image source either) is watched on its losses and G's gradient only, and a short
    run gets its signals and no diagnosis."""
    from PIL import Image

    from tfgan_app import train
    from tfgan_app.utils import read_json

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(64):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            folder / f"{i:02d}.png")
    assert _doctor_batches(f"folder:{folder}") == (None, None, None)
    settings = train.resolve_settings("cifar10-dcgan", dataset=f"folder:{folder}", epochs=3,
                                      batch_size=16, seed=0, plot_every=1000, backup_every=1000)
    out = str(tmp_path / "run")
    train.train(settings, out, verbose=0)
    history = read_json(os.path.join(out, "history.json"))
    assert len(history["doctor_grad_ratio"]) == 3 and len(history["doctor_oscillation"]) == 3
    assert not any(k in history for k in ("doctor_diversity", "doctor_classes",
                                          "doctor_overfit"))
    assert read_json(os.path.join(out, "report.json"))["diagnoses"] == []
