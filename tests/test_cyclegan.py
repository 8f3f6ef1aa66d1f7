"""CycleGAN (issue #19): ResNet generator, unpaired data, the history pool, the model."""

import hashlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgan_app import _tfgan, builders, kinds
from tfgan_app.cyclegan import (CycleGAN, CycleGrid, HistoryPool, LinearDecay,
                                cycle_consistency_loss)
from tfgan_app.data import unpaired as U

S = 16  # image side in these tests


def _nets(shape_a=(S, S, 1), shape_b=(S, S, 1), seed=0):
    keras.utils.set_random_seed(seed)

    def gen(src, out):
        return builders.resnet_generator(out, src[-1], num_blocks=1, base_filters=8,
                                         downsamplings=1)

    def disc(shape):
        return builders.patchgan_discriminator(shape, conditional=False, norm="instance",
                                               base_filters=8, receptive_field=16)

    return gen(shape_a, shape_b), gen(shape_b, shape_a), disc(shape_a), disc(shape_b)


def _gan(seed=0, identity_weight=0.0, **kw):
    return CycleGAN(*_nets(seed=seed), seed=seed, identity_weight=identity_weight, **kw)


def _compile(gan, lr=1e-3, total_steps=None, **options):
    def adam():
        rate = lr if total_steps is None else LinearDecay(lr, total_steps)
        return keras.optimizers.Adam(rate, beta_1=0.5)

    gan.compile(adam(), adam(), jit_compile=False, **options)
    return gan


# ---------------------------------------------------------------- builders


def test_resnet_generator_and_unconditional_patchgan():
    g = builders.build("generator", {"builder": "resnet", "num_blocks": 1, "base_filters": 4},
                       data_shape=(32, 32, 3), source_shape=(32, 32, 1))
    assert g.input_shape == (None, 32, 32, 1) and g.output_shape == (None, 32, 32, 3)
    names = [layer.name for layer in g.layers]
    assert {"c7s1_conv", "d1_conv", "d2_conv", "r1_conv2", "u1_conv", "u2_conv"} <= set(names)
    out = g(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype("float32"))
    assert float(tf.reduce_max(tf.abs(out))) <= 1.0
    assert g.get_layer("c7s1_conv").kernel.shape == (7, 7, 1, 4)
    assert g.get_layer("r1_conv1").kernel.shape == (3, 3, 16, 16)  # 4 -> d8 -> d16
    # reflection padding is numpy's "reflect"
    x = np.arange(2 * 4 * 5 * 1, dtype="float32").reshape(2, 4, 5, 1)
    np.testing.assert_array_equal(builders.ReflectionPadding2D(2)(x),
                                  np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect"))
    for bad, match in (({"downsamplings": 3}, "divisible by 8"),
                       ({"num_blocks": -1}, ">= 0")):
        with pytest.raises(ValueError, match=match):
            builders.resnet_generator((20, 20, 1), **bad)
    d = builders.build("discriminator", {"builder": "patchgan", "conditional": False,
                                         "norm": "instance"}, data_shape=(32, 32, 3))
    assert len(d.inputs) == 1 and d.output_shape == (None, 4, 4, 1)


# ---------------------------------------------------------------- data


def _keys(images):
    return {hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest() for x in images}


def test_offline_domains_are_disjoint_halves_with_a_known_mapping():
    a, b = U.offline_domains(image_size=S)
    assert a.shape == b.shape == (719, S, S, 1)
    x, _ = U._digits("train", S)
    # every B image is T of a training digit that is NOT in A: never seen as a pair
    keys_a, keys_b = _keys(a), _keys(b)
    t_of_a = _keys(U.transform(a))
    assert not (t_of_a & keys_b)
    assert keys_b <= _keys(U.transform(x)) and keys_a <= _keys(x)
    # the mapping: strokes (bright on dark) become thicker dark strokes on bright
    t = U.transform(a)
    assert a.mean() < -0.2 < 0 < t.mean() + 0.3 and (t < 0).mean() > (a > 0).mean()
    ha, hb, labels = U.heldout(n=10, image_size=S)
    np.testing.assert_array_equal(hb, U.transform(ha))
    assert ha.shape == (10, S, S, 1) and labels.dtype == np.int32
    ds = U.offline(image_size=S, batch_size=8)
    assert ds.element_spec[0].shape == (8, S, S, 1) and ds.info["unpaired"]
    assert ds.info["domain_shapes"] == {"a": [S, S, 1], "b": [S, S, 1]}


def test_unpaired_arrays_shuffle_independently_and_repeat_the_smaller():
    x = np.random.default_rng(0).uniform(-1, 1, (40, 4, 4, 1)).astype("float32")
    ds = U.from_arrays(x, x, batch_size=4, seed=3)
    first = [(a.numpy(), b.numpy()) for a, b in ds]
    again = [(a.numpy(), b.numpy()) for a, b in U.from_arrays(x, x, batch_size=4, seed=3)]
    assert all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1])
               for p, q in zip(first, again))  # seeded
    assert not any(np.array_equal(a, b) for a, b in first)  # independent orders
    ds = U.from_arrays(x[:8], x[:4], batch_size=4)
    assert ds.info["steps_per_epoch"] == 2 and len(list(ds)) == 2  # B repeats
    ds = U.from_arrays(x[:8], x[:20].repeat(3, -1), batch_size=4)
    assert len(list(ds)) == 5 and ds.element_spec[1].shape == (4, 4, 4, 3)
    with pytest.raises(ValueError, match="domain B.*batch_size=4"):
        U.from_arrays(x, x[:2], batch_size=4)


def _png(path, seed, size=6, mode="L"):
    arr = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    Image.fromarray(arr, mode=mode).save(path)


def test_unpaired_folders_and_their_errors(tmp_path):
    for d, n in (("trainA", 5), ("trainB", 3)):
        (tmp_path / d).mkdir()
        for i in range(n):
            _png(tmp_path / d / f"{i}.png", seed=i + 10 * n)
    ds = U.from_folders(tmp_path, batch_size=2)
    assert ds.element_spec[0].shape == (2, 6, 6, 1) and len(list(ds)) == 2
    assert ds.info["domain_examples"] == {"a": 5, "b": 3}
    with pytest.raises(ValueError, match="testA"):
        U.from_folders(tmp_path, "test", batch_size=2)
    assert U.heldout_domains(ds.info, 2) is None  # no test folders: no pictures
    for d in ("testA", "testB"):
        (tmp_path / d).mkdir()
        for i in range(2):
            _png(tmp_path / d / f"{i}.png", seed=100 + i)
    held_a, held_b = U.heldout_domains(ds.info, 2)
    assert held_a.shape == held_b.shape == (2, 6, 6, 1)
    for f in (tmp_path / "trainB").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match=r"domain B \(trainB\).*no images.*trainB"):
        U.from_folders(tmp_path, batch_size=2)
    _png(tmp_path / "trainB" / "0.png", seed=0)
    (tmp_path / "trainB" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match=r"trainB.*bad\.png"):
        U.from_folders(tmp_path, batch_size=1)
    with pytest.raises(ValueError, match="not found"):
        U.from_folders(tmp_path / "nothing")


def test_unpaired_tfds_cycle_gan_mock():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        ds = U.from_tfds("horse2zebra", image_size=8, batch_size=2)
        a, b = next(iter(ds))
        assert a.shape == b.shape == (2, 8, 8, 3) and ds.info["tfds_name"] == \
            "cycle_gan/horse2zebra"
        assert -1 <= float(tf.reduce_min(a)) and float(tf.reduce_max(b)) <= 1


# ---------------------------------------------------------------- the pool


def _run_pool(pool, values, seeds):
    query = tf.function(pool.query)  # one image per call, one trace
    return [float(query(tf.constant([[[[v]]]], tf.float32), s)[0, 0, 0, 0])
            for v, s in zip(values, seeds)]


def test_history_pool_semantics_and_determinism():
    n, size = 400, 5
    seeds = [tf.constant([7, i], tf.int64) for i in range(n)]
    pool = HistoryPool(size, (1, 1, 1))
    out = _run_pool(pool, range(n), seeds)
    assert out[:size] == list(range(size))  # fills: stores and returns the new one
    old = [o for i, o in enumerate(out) if o != i]
    assert all(o <= i for i, o in enumerate(out))  # an older fake or the new one
    assert 0.42 < len(old) / (n - size) < 0.58  # w.p. 0.5 the D sees an older fake
    stored = sorted(pool.images.numpy().ravel().tolist())
    assert int(pool.count.numpy()) == size and float(n - 1) in stored  # newest always stored
    again = HistoryPool(size, (1, 1, 1))
    assert _run_pool(again, range(n), seeds) == out  # a seed fixes every draw
    never, always = HistoryPool(size, (1, 1, 1), 0.0), HistoryPool(size, (1, 1, 1), 1.0)
    assert _run_pool(never, range(50), seeds) == list(range(50))
    assert all(o < i for i, o in enumerate(_run_pool(always, range(50), seeds)) if i >= size)
    # a batch is handled image by image, also compiled by XLA
    batch = HistoryPool(3, (2, 2, 1))
    xla = tf.function(batch.query, jit_compile=True)
    x = tf.reshape(tf.range(4 * 4, dtype=tf.float32), [4, 2, 2, 1])
    first = xla(x, tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(first[:3], x.numpy()[:3])
    assert int(batch.count.numpy()) == 3 and any(np.array_equal(first[3], x[i]) for i in
                                                 range(4))
    assert HistoryPool(0, (2, 2, 1)).query(x, tf.constant([1, 2], tf.int64)) is x


def _age_statistics(outputs):
    ages = [i - o for i, o in enumerate(outputs) if o != i]
    return len(ages) / len(outputs), float(np.mean(ages))


def test_history_pool_matches_tfgan_tensor_pool():
    """TF-GAN's tensor_pool (a RandomShuffleQueue, v1 graph) and ours on the same input
    stream: the same share of old fakes and the same mean age of the old fakes (a pool that
    stored new fakes only when it returned an old one would give twice the age)."""
    n, size = 1000, 5
    pool_lib = _tfgan.load("features.random_tensor_pool")
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        value = tf.compat.v1.placeholder(tf.float32, [])
        pooled = pool_lib.tensor_pool(value, pool_size=size, pooling_probability=0.5)
        with tf.compat.v1.Session() as sess:
            theirs = [float(sess.run(pooled, {value: float(i)})) for i in range(n)]
    ours = _run_pool(HistoryPool(size, (1, 1, 1)), range(n),
                     [tf.constant([11, i], tf.int64) for i in range(n)])
    (share_t, age_t), (share_o, age_o) = _age_statistics(theirs), _age_statistics(ours)
    assert abs(share_t - share_o) < 0.06 and abs(age_t - age_o) < 0.2 * age_t, (
        share_t, age_t, share_o, age_o)


def _tiny_gan(pool_size, seed=0, identity_weight=0.0, s=8):
    """A CycleGAN of 8x8 networks of a few hundred weights (pool and replication checks)."""
    keras.utils.set_random_seed(seed)

    def gen():
        return builders.resnet_generator((s, s, 1), num_blocks=1, base_filters=4,
                                         downsamplings=1)

    def disc():
        return builders.patchgan_discriminator((s, s, 1), conditional=False, norm="instance",
                                               base_filters=4, receptive_field=16)

    return CycleGAN(gen(), gen(), disc(), disc(), seed=seed, identity_weight=identity_weight,
                    pool_size=pool_size)


class _SpyCycleGAN(CycleGAN):
    """Records, step by step, the fakes the generators made and those the discriminators
    were given (eager ``train_step`` only)."""

    def generator_losses(self, a, b, training=True):
        terms, fakes = super().generator_losses(a, b, training)
        self.made.append([np.asarray(f) for f in fakes])
        return terms, fakes

    def discriminator_losses(self, a, b, fake_a, fake_b, training=True):
        self.seen.append([np.asarray(fake_a), np.asarray(fake_b)])
        return super().discriminator_losses(a, b, fake_a, fake_b, training)


def test_discriminators_see_an_older_fake_with_probability_one_half():
    """In training (not just the pool alone): once the pool of 4 is full, each fake the
    discriminator judges is, with probability 0.5, an older fake (bit for bit one made before
    it: in an earlier step, or earlier in this batch) instead of its own; 2 domains x 8
    steps x batch 16 (eager steps: their cost is per step, not per image)."""
    steps, batch, size = 8, 16, 4
    gan = _tiny_gan(size)
    gan.__class__ = _SpyCycleGAN
    gan.made, gan.seen = [], []
    _compile(gan, lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        gan.train_step((tf.constant(rng.uniform(-1, 1, (batch, 8, 8, 1)), tf.float32),
                        tf.constant(rng.uniform(-1, 1, (batch, 8, 8, 1)), tf.float32)))
    older = judged = 0
    for domain in (0, 1):
        earlier = set()  # the fakes made before this one (images go through one by one)
        for t in range(steps):
            for i in range(batch):
                seen, new = gan.seen[t][domain][i], gan.made[t][domain][i]
                if t * batch + i < size:  # filling: the new fake
                    assert np.array_equal(seen, new)
                elif not np.array_equal(seen, new):
                    assert seen.tobytes() in earlier, (t, i)  # an older fake, exactly
                    older += 1
                judged += t * batch + i >= size
                earlier.add(new.tobytes())
    assert 0.38 < older / judged < 0.62, (older, judged)


# ---------------------------------------------------------------- the model


def test_loss_terms_equal_tfgan_and_the_formulas():
    gan = _compile(_gan(identity_weight=0.5))
    a, b, _ = U.heldout(n=4, image_size=S)
    b = -a  # any images of B
    terms, (fake_a, fake_b) = gan.generator_losses(tf.constant(a), tf.constant(b),
                                                   training=False)
    G, F = gan.generator_ab, gan.generator_ba
    rec_a, rec_b = F(G(a)), G(F(b))
    tfgan = _tfgan.losses_impl().cycle_consistency_loss(a, rec_a, b, rec_b)
    np.testing.assert_allclose(float(terms["cycle"]), 10.0 * float(tfgan), rtol=1e-5)
    manual = (np.abs(a - rec_a).mean() + np.abs(b - rec_b).mean()) / 2
    np.testing.assert_allclose(float(cycle_consistency_loss(a, rec_a, b, rec_b)), manual,
                               rtol=1e-5)
    idt = 0.5 * 10.0 * (np.abs(G(b) - b).mean() + np.abs(F(a) - a).mean()) / 2
    np.testing.assert_allclose(float(terms["identity"]), idt, rtol=1e-5)
    lsq = float(np.mean(0.5 * (gan.discriminator_b(G(a)) - 1.0) ** 2))  # TF-GAN's LSGAN G loss
    np.testing.assert_allclose(float(terms["g_adv_ab"]), lsq, rtol=1e-5)
    total = sum(float(terms[k]) for k in ("g_adv_ab", "g_adv_ba", "cycle", "identity"))
    np.testing.assert_allclose(float(terms["g_loss"]), total, rtol=1e-5)
    np.testing.assert_allclose(fake_b, G(a), atol=1e-6)


def test_bad_networks_options_and_data():
    g_ab, g_ba, d_a, d_b = _nets()
    rgb = builders.resnet_generator((S, S, 3), 1, num_blocks=1, base_filters=4,
                                    downsamplings=1)
    with pytest.raises(ValueError, match="generator_ba input has shape"):
        CycleGAN(rgb, g_ba, d_a, d_b)
    _, gba3, _, db3 = _nets((S, S, 1), (S, S, 3))
    with pytest.raises(ValueError, match="identity loss.*identity_weight=0"):
        CycleGAN(rgb, gba3, d_a, db3)
    assert CycleGAN(rgb, gba3, d_a, db3, identity_weight=0).shape_b == (S, S, 3)
    gan = CycleGAN(g_ab, g_ba, d_a, d_b)
    with pytest.raises(ValueError, match="does not implement.*gradient_penalty"):
        gan.compile(gradient_penalty=10.0)
    with pytest.raises(ValueError, match="class labels"):
        gan.compile(loss="acgan")
    with pytest.raises(TypeError, match="unknown training option"):
        gan.compile(cycle=3)
    _compile(gan)
    assert gan.gan_loss.name == "least_squares"  # the paper's default
    with pytest.raises(ValueError, match="unpaired \\(a, b\\)"):
        gan.fit(tf.data.Dataset.from_tensors(tf.zeros([2, S, S, 1])), verbose=0)
    with pytest.raises(ValueError, match="domain B images have shape"):
        gan.fit(tf.data.Dataset.from_tensors((tf.zeros([2, S, S, 1]), tf.zeros([2, 8, 8, 1]))),
                verbose=0)
    with pytest.raises(ValueError, match="direction"):
        gan.translate(np.zeros((1, S, S, 1)), "sideways")


def test_linear_decay_schedule():
    sched = LinearDecay(1.0, 100)
    got = [float(sched(s)) for s in (0, 49, 50, 75, 100, 150)]
    np.testing.assert_allclose(got, [1.0, 1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-6)
    assert keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(sched)).get_config() == sched.get_config()


@pytest.fixture(scope="module")
def trained():
    """One epoch (89 steps, batch 8) on the offline digits task, with EMA and the decay."""
    gan = _compile(_gan(), total_steps=400, ema_decay=0.9)
    heldout_a, heldout_b, _ = U.heldout(n=128, image_size=S)
    before = float(np.abs(gan.translate(heldout_a, use_ema=False) - heldout_b).mean())
    hist = gan.fit(U.offline(image_size=S, batch_size=8), epochs=1, verbose=0)
    after = float(np.abs(gan.translate(heldout_a, use_ema=False) - heldout_b).mean())
    return gan, hist.history, before, after, heldout_a


def test_training_moves_g_towards_the_unseen_true_mapping(trained):
    gan, logs, before, after, heldout_a = trained
    assert set(logs) == {"g_loss", "d_loss", "g_adv_ab", "g_adv_ba", "cycle", "identity",
                         "d_a", "d_b"}
    assert logs["identity"] == [0.0]
    # held-out L1 of G(a) against T(a), which training never saw as a pair
    assert after < 0.8 * before, (before, after)
    print(f"held-out L1 of G(a) vs T(a): {before:.3f} untrained, {after:.3f} trained")
    assert int(gan.pool_a.count.numpy()) == int(gan.pool_b.count.numpy()) == 50
    ema = gan.translate(heldout_a[:4])
    assert not np.allclose(ema, gan.translate(heldout_a[:4], use_ema=False))


def test_save_load_round_trip_and_resume_with_the_same_pool(trained, tmp_path):
    gan = trained[0]
    path = str(tmp_path / "cyclegan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path)
    a, _, _ = U.heldout(n=8, image_size=S)
    for direction in ("a_to_b", "b_to_a"):
        for ema in (True, False):
            np.testing.assert_array_equal(loaded.translate(a, direction, use_ema=ema),
                                          gan.translate(a, direction, use_ema=ema))
    for p, q in ((gan.pool_a, loaded.pool_a), (gan.pool_b, loaded.pool_b)):
        np.testing.assert_array_equal(p.images.numpy(), q.images.numpy())
        assert int(p.count.numpy()) == int(q.count.numpy())
    assert loaded.options.as_dict() == gan.options.as_dict()
    assert isinstance(loaded.g_optimizer._learning_rate, LinearDecay)
    assert int(loaded.d_optimizer.iterations.numpy()) == int(gan.d_optimizer.iterations.numpy())
    # resuming: one more step from the original and from the loaded copy is the same step
    batch = next(iter(U.offline(image_size=S, batch_size=8, seed=5)))
    for model in (gan, loaded):
        model.train_step(batch)  # eagerly: tracing two more steps would cost more
    for w, v in zip(gan.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(w), np.asarray(v), err_msg=w.path)


def test_cyclegan_kind_builds_the_model_and_pictures_both_cycles(trained, tmp_path):
    info = U.offline(image_size=S, batch_size=8).info
    kind = kinds.kind_of(info)
    assert kind.name == "cyclegan"
    spec_g = {"builder": "resnet", "num_blocks": 1, "base_filters": 4, "downsamplings": 1}
    spec_d = {"builder": "patchgan", "conditional": False, "base_filters": 4,
              "receptive_field": 16, "norm": "instance"}
    shapes = {"data_shape": tuple(info["data_shape"]), "source_shape": info["source_shape"]}
    model = kind.build_model(builders.build("generator", spec_g, **shapes),
                             builders.build("discriminator", spec_d, **shapes),
                             {"generator": spec_g, "discriminator": spec_d, "seed": 0,
                              "cyclegan": {"identity_weight": 0.0}})
    assert isinstance(model, CycleGAN) and model.shape_a == model.shape_b == (S, S, 1)
    gan = trained[0]
    a, b = U.heldout_domains(info, 3)
    cb = CycleGrid(str(tmp_path), a, b)
    cb.set_model(gan)
    cb.on_epoch_end(0)
    picture = np.asarray(Image.open(tmp_path / "epoch_0001.png"))
    assert picture.shape == (4 * (3 * (S + 1) + 1), 4 * (6 * (S + 1) + 1))  # 3 rows, 6 columns


# ---------------------------------------------------------------- tf.distribute
# Two logical CPU devices must be configured before TensorFlow initialises its devices, so
# these checks run this file as a script in a fresh process (``python tests/test_cyclegan.py
# distribute``), as tests/test_distribute.py does for GANModel, and read its JSON report.

_DIST_STEPS, _DIST_BATCH, _DIST_POOL = 3, 4, 3


def _dist_models(pool_seed=None):
    gan = _tiny_gan(_DIST_POOL, identity_weight=0.5)
    if pool_seed is not None:
        gan.pool_seed = pool_seed.__get__(gan)
    gan.compile(keras.optimizers.SGD(0.5), keras.optimizers.SGD(0.5), jit_compile=False)
    return gan


def _dist_data():
    rng = np.random.default_rng(7)
    n = _DIST_STEPS * _DIST_BATCH
    a = rng.uniform(-1, 0.5, (n, 8, 8, 1)).astype("float32")
    a[np.arange(n) % _DIST_BATCH >= _DIST_BATCH // 2] += 0.5  # replica 1's half differs
    b = -rng.uniform(-1, 1, (n, 8, 8, 1)).astype("float32") ** 2
    return tf.data.Dataset.from_tensor_slices((a, b)).batch(_DIST_BATCH, drop_remainder=True)


def _dist_one_device():
    single = _dist_models()
    start, g_start = single.get_weights(), single.generator_ab.get_weights()
    return single, start, g_start, single.fit(_dist_data(), epochs=1, verbose=0).history


def _dist_one_vs_two(strategy, one_device, pool_seed=None):
    single, start, g_start, h1 = one_device
    with strategy.scope():
        mirrored = _dist_models(pool_seed)
    mirrored.set_weights(start)
    h2 = mirrored.fit(_dist_data(), epochs=1, verbose=0).history
    pools = [p for g in (single, mirrored) for p in (g.pool_a, g.pool_b)]
    replica_pools = [[v.numpy() for v in strategy.experimental_local_results(p.images.value)]
                     for p in (mirrored.pool_a, mirrored.pool_b)]
    return {
        "replicas": strategy.num_replicas_in_sync,
        "max_weight_diff": max(float(np.abs(x - y).max())
                               for x, y in zip(single.get_weights(), mirrored.get_weights())),
        "max_update": max(float(np.abs(w - s).max())
                          for w, s in zip(single.generator_ab.get_weights(), g_start)),
        "log_diff": max(abs(h1[k][0] - h2[k][0]) for k in h1),
        "pool_diff": max(float(np.abs(pools[i].images.numpy() - pools[i + 2].images.numpy())
                               .max()) for i in (0, 1)),
        "replica_pool_diff": max(float(np.abs(c[0] - c[1]).max()) for c in replica_pools),
        "counts": [int(p.count.numpy()) for p in pools],
    }


def _dist_case():
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    from tfgan_app.randomness import SeededTraining

    one_device = _dist_one_device()
    return {"global_pool": _dist_one_vs_two(strategy, one_device),
            # control: pools seeded per replica (the replica id folded in) diverge
            "per_replica_seed": _dist_one_vs_two(strategy, one_device,
                                                 SeededTraining.next_seed)}


@pytest.fixture(scope="module")
def distributed():
    import json
    import os
    import subprocess
    import sys

    here = os.path.abspath(__file__)
    repo = os.path.dirname(os.path.dirname(here))
    proc = subprocess.run([sys.executable, here, "distribute"], cwd=repo, capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": repo})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.slow
def test_two_replicas_train_as_one_device_with_one_global_pool(distributed):
    """Same global batches, same start: after 3 steps (the pool full after the first, so the
    later steps return old fakes) weights, logs and pools agree within 1e-5 between one
    device and MirroredStrategy on two logical CPUs; both replicas' pool copies are identical.
    Control: pools seeded per replica diverge (the check can fail)."""
    r = distributed["global_pool"]
    assert r["replicas"] == 2 and r["max_update"] > 1e-3, r
    assert r["max_weight_diff"] < 1e-5 and r["log_diff"] < 1e-5, r
    assert r["pool_diff"] < 1e-5 and r["replica_pool_diff"] == 0.0, r
    assert r["counts"] == [_DIST_POOL] * 4
    c = distributed["per_replica_seed"]
    assert c["replica_pool_diff"] > 1e-3 and c["max_weight_diff"] > 1e-4, c


if __name__ == "__main__":
    import json
    import sys

    if sys.argv[1:] == ["distribute"]:
        print("RESULT " + json.dumps(_dist_case()), flush=True)
