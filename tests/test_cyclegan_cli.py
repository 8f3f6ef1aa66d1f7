"""CycleGAN through the run layer (#19): ``tfgan-app train`` on ``unpaired:*`` data, resume,
``sample --direction``, ``evaluate``, the bad-input errors and the evaluation's baselines.

One tiny run (16x16 held-out digits as the two domains, a one-block ResNet and a 16-px
PatchGAN, 2 epochs of 11 batches) is trained once through the CLI; the tests read it back.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tfgan_app.cli import main

_GEN = '{"builder": "resnet", "num_blocks": 1, "base_filters": 8, "downsamplings": 1}'
_DISC = ('{"builder": "patchgan", "conditional": false, "norm": "instance", '
         '"base_filters": 8, "receptive_field": 16}')
_SETS = ["dataset_options.image_size=16", f"generator={_GEN}", f"discriminator={_DISC}",
         "loss=least_squares", "loss_options={}", "ema_decay=null", "report=cyclegan",
         "lr_decay=linear_second_half", "plot_seconds=0", "backup_seconds=0",
         "backup_every=1"]
_TINY = ["--dataset", "unpaired:digits:test", "--batch-size", "32", "--epochs", "2",
         *[x for s in _SETS for x in ("--set", s)]]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cyclegan") / "run")
    assert main(["train", "--out", out, "--quiet", *_TINY]) == 0
    return out


def _settings():
    from tfgan_app import train

    return train.resolve_settings(None, overrides=_SETS, dataset="unpaired:digits:test",
                                  batch_size=32, epochs=2)


def test_train_writes_both_generators_cycle_grids_and_the_report(run_dir, capsys):
    from tfgan_app.evaluation.cyclegan import RunTranslators, cyclegan_report
    from tfgan_app.rundir import RunDir

    run = RunDir(run_dir)
    for name in (run.GENERATOR, run.GENERATOR_BA, run.GAN, run.REPORT):
        assert os.path.isfile(run.path(name)), name
    assert run.kind.name == "cyclegan" and run.data["unpaired"]
    with Image.open(os.path.join(run.path(run.SAMPLES), "epoch_0002.png")) as im:
        assert im.size[0] == (6 * 17 + 1) * 4  # a | G(a) | F(G(a)) | b | F(b) | G(F(b))
    history = run.history()
    assert history["epoch"] == [0, 1] and {"cycle", "identity", "d_a", "d_b"} <= set(history)
    rep = run.report()
    assert {"a_to_b", "b_to_a", "cycle", "labels"} <= set(rep) and rep["num_a"] == 359
    # measured: two small epochs already reconstruct far better than an untrained pair (~7 dB)
    assert rep["cycle"]["psnr_a"] > 12 and rep["cycle"]["psnr_b"] > 12
    assert rep["a_to_b"]["model"]["l1"] < rep["a_to_b"]["identity"]["l1"]
    # the report is the evaluation of the saved generators (one computation)
    again = cyclegan_report(RunTranslators(run), run.data)
    assert again["cycle"] == pytest.approx(rep["cycle"], abs=1e-5)
    assert again["labels"] == rep["labels"]


class _Killed(Exception):
    pass


@pytest.mark.slow  # two more trainings (about a minute on 2 cores)
def test_resume_continues_bit_identical(run_dir, tmp_path):
    import keras

    from tfgan_app import checkpoint, train
    from tfgan_app.rundir import RunDir

    class KillInSecondEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if len(train_history) == 1 and batch >= 4:
                raise _Killed

        def on_epoch_end(self, epoch, logs=None):
            train_history.append(epoch)

    train_history = []
    settings = _settings()
    run = tmp_path / "killed"
    with pytest.raises(_Killed):
        train.train(settings, str(run), verbose=0, extra_callbacks=[KillInSecondEpoch()])
    assert checkpoint.latest_backup(str(run / "backup"))[1]["epoch"] == 1
    resumed = train.train(settings, str(run), verbose=0)
    assert resumed["resumed_from_epoch"] == 1
    gan, ref = resumed["gan"], RunDir(run_dir).load_gan()
    for a, b in zip(gan.get_weights(), ref.get_weights()):  # the 4 networks and both pools
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(gan.pool_a.images.numpy(), ref.pool_a.images.numpy())
    np.testing.assert_array_equal(gan.seed_generator.state, ref.seed_generator.state)
    assert int(gan.g_optimizer.iterations) == int(ref.g_optimizer.iterations) == 22
    # every epoch once, as the uninterrupted run logged it (a logged mean may differ in its
    # last bit between two fresh runs whose weights are bit-identical)
    history, ref_history = json.loads((run / "history.json").read_text()), RunDir(run_dir).history()
    assert set(history) == set(ref_history) and history["epoch"] == [0, 1]
    for key, values in ref_history.items():
        assert history[key] == pytest.approx(values, rel=1e-6)
    # the paper's schedule: constant for the first half, 0 at the last step
    lr = gan.g_optimizer._learning_rate
    assert type(lr).__name__ == "LinearDecay" and float(lr(11)) == pytest.approx(2e-4)
    assert float(gan.g_optimizer.learning_rate) == 0.0


def _pngs(folder, size, n=2):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(
            os.path.join(folder, f"im{i}.png"))
    return folder


@pytest.mark.parametrize("direction,key", [("AtoB", "a_to_b"), ("BtoA", "b_to_a")])
def test_sample_translates_in_either_direction(run_dir, tmp_path, capsys, direction, key):
    from tfgan_app.rundir import RunDir

    folder = _pngs(str(tmp_path / "in"), 16)
    assert main(["sample", run_dir, "--input", folder, "--direction", direction]) == 0
    out = os.path.join(run_dir, "samples", "translated", direction)
    assert sorted(os.listdir(out)) == ["im0.png", "im1.png"]
    translator = RunDir(run_dir).translator(direction=key)
    x = np.asarray(Image.open(os.path.join(folder, "im0.png")), np.float32) / 127.5 - 1.0
    want = np.round((translator.translate(x[None, ..., None])[0, ..., 0] + 1.0) * 127.5)
    got = np.asarray(Image.open(os.path.join(out, "im0.png")), np.int16)
    assert np.abs(got - want).max() <= 1


def test_sample_without_input_is_a_held_out_cycle_grid_and_bad_calls_exit_2(run_dir, tmp_path,
                                                                           capsys):
    out = tmp_path / "cycles.png"
    assert main(["sample", run_dir, "--out", str(out), "-n", "3"]) == 0
    with Image.open(out) as im:  # 6 columns x 3 rows of 16-px tiles, 1-px borders, x4
        assert im.size == ((6 * 17 + 1) * 4, (3 * 17 + 1) * 4)
    assert main(["sample", run_dir, "--direction", "sideways"]) == 2
    err = capsys.readouterr().err
    assert "direction must be a_to_b (AtoB) or b_to_a (BtoA), got 'sideways'" in err
    assert "Traceback" not in err
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(big)
    assert main(["sample", run_dir, "--input", str(big), "--direction", "BtoA"]) == 2
    err = capsys.readouterr().err
    assert "big.png: a 20x24 (height x width) image" in err and "16x16" in err


def test_evaluate_a_cyclegan_run(run_dir, capsys):
    from tfgan_app.rundir import RunDir

    assert main(["evaluate", run_dir]) == 0
    printed = capsys.readouterr().out
    assert "histogram baseline" in printed and "cycle PSNR" in printed
    run = RunDir(run_dir)
    ev = json.loads(open(run.path(run.EVAL)).read())
    assert ev["kind"] == "cyclegan" and set(ev["metrics"]) == {"psnr", "ssim", "l1", "accuracy"}
    rep = run.report()
    assert ev["metrics"]["psnr"] == pytest.approx(rep["a_to_b"]["model"]["psnr"], abs=1e-6)
    assert ev["baseline"]["psnr"] == pytest.approx(rep["a_to_b"]["histogram"]["psnr"], abs=1e-6)
    assert ev["metrics"]["accuracy"] == pytest.approx(rep["labels"]["g_of_a_as_a_label"])
    assert ev["details"]["cycle"] == pytest.approx(rep["cycle"], abs=1e-5)


def test_tuning_objective_and_search_space_of_a_cyclegan_run(run_dir):
    from tfgan_app.evaluation.objective import evaluate_objective
    from tfgan_app.rundir import RunDir
    from tfgan_app.tuning import space

    psnr = RunDir(run_dir).report()["a_to_b"]["model"]["psnr"]
    assert evaluate_objective(run_dir) == {"val_psnr": pytest.approx(psnr, abs=1e-6)}
    with pytest.raises(ValueError, match="'fid' does not apply to cyclegan data"):
        evaluate_objective(run_dir, "fid")
    # CycleGAN has no latent input and refuses d_steps and penalties: not searched
    assert sorted(space.search_space(_settings())) == ["beta_1", "d_lr", "d_width", "g_lr",
                                                       "g_width", "loss"]


def _folder(root, a_channels=1, b_channels=1, n=4, size=16, b_size=16):
    rng = np.random.default_rng(0)
    for split, c, sz in (("trainA", a_channels, size), ("trainB", b_channels, b_size)):
        os.makedirs(os.path.join(root, split))
        for i in range(n):
            shape = (sz, sz) if c == 1 else (sz, sz, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(
                os.path.join(root, split, f"{i}.png"))
    return root


def _train_error(capsys, tmp_path, dataset, *extra):
    code = main(["train", "--out", str(tmp_path / "bad"), "--quiet", "--dataset", dataset,
                 "--batch-size", "2", "--epochs", "1",
                 *[x for s in _SETS[:5] for x in ("--set", s)], *extra])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    return err


def test_bad_unpaired_input_exits_2_naming_what_and_where(tmp_path, capsys):
    root = _folder(str(tmp_path / "empty_b"))
    for f in os.listdir(os.path.join(root, "trainB")):
        os.remove(os.path.join(root, "trainB", f))
    err = _train_error(capsys, tmp_path, f"unpaired-folder:{root}")
    assert "domain B (trainB)" in err and "trainB" in err

    root = _folder(str(tmp_path / "corrupt"))
    with open(os.path.join(root, "trainA", "broken.png"), "wb") as f:
        f.write(b"\x89PNG not really")
    err = _train_error(capsys, tmp_path, f"unpaired-folder:{root}")
    assert "domain A (trainA)" in err and "broken.png" in err

    # grey A, colour B: the identity loss feeds B to G, so it cannot take these domains
    root = _folder(str(tmp_path / "channels"), a_channels=1, b_channels=3)
    err = _train_error(capsys, tmp_path, f"unpaired-folder:{root}")
    assert "domain A (16, 16, 1), B (16, 16, 3)" in err and "identity_weight" in err
    # ... a generator of noise cannot take A's images at all
    err = _train_error(capsys, tmp_path, f"unpaired-folder:{root}", "--set",
                       'generator={"builder": "mlp"}')
    assert "'mlp' generator builder" in err and "source_shape" in err
    # ... nor can the ResNet map 16x16 images of A to 8x8 images of B
    root = _folder(str(tmp_path / "sizes"), b_size=8)
    err = _train_error(capsys, tmp_path, f"unpaired-folder:{root}", "--set",
                       "cyclegan.identity_weight=0", "--set", "dataset_options={}")
    assert "'resnet' maps (8, 8, 1) to (8, 8, 1), but the domains of" in err
    assert "A (16, 16, 1) and B (8, 8, 1)" in err and "image_size" in err

    err = _train_error(capsys, tmp_path, "unpaired:digits", "--set", "cyclegan.cycle=3")
    assert "unknown CycleGAN keyword(s) ['cycle']" in err
    err = _train_error(capsys, tmp_path, "unpaired:digits", "--set", "translation={}")
    assert "translation={} does not apply to unpaired data" in err
    err = _train_error(capsys, tmp_path, "unpaired:digits", "--set", "gradient_penalty=1")
    assert "CycleGAN does not implement the option(s) gradient_penalty" in err
    err = _train_error(capsys, tmp_path, "unpaired:digits", "--set", "num_classes=10")
    assert "has no class labels" in err
    err = _train_error(capsys, tmp_path, "unpaired:digits:valid")
    assert "unknown split 'valid'" in err


def test_cyclegan_setting_matches_the_model_keywords():
    import inspect

    from tfgan_app.cyclegan import CycleGAN
    from tfgan_app.options import CYCLEGAN_KEYWORDS, check_setting

    params = inspect.signature(CycleGAN.__init__).parameters
    assert set(CYCLEGAN_KEYWORDS) == {p for p in params if p not in (
        "self", "generator_ab", "generator_ba", "discriminator_a", "discriminator_b", "seed",
        "kwargs")}
    assert check_setting("cyclegan", {"pool_size": 0}) == {"pool_size": 0}
    with pytest.raises(ValueError, match="pool_probability: expected a number in"):
        check_setting("cyclegan", {"pool_probability": 2})


def _mean_classifier(sign, threshold):
    """A 2-class 'classifier': class 1 when ``sign`` x (mean grey level) > ``threshold``."""
    import keras

    inp = keras.Input((8, 8, 1))
    m = keras.layers.GlobalAveragePooling2D()(inp)
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(
        [[-sign, sign]]), bias_initializer=keras.initializers.Constant(
        [threshold, -threshold]))(m)
    return keras.Model(inp, out)


def test_evaluation_on_a_constructed_case():
    import tensorflow as tf

    from tfgan_app.data import unpaired
    from tfgan_app.evaluation.cyclegan import evaluate_cyclegan, histogram_match

    a = unpaired.heldout("digits", 40, image_size=8)[0]
    b = -a  # a known, invertible mapping: inversion
    means = a.mean(axis=(1, 2, 3))
    t = float(np.median(means))
    labels = (means > t).astype(int)
    clf_a, clf_b = _mean_classifier(1.0, t), _mean_classifier(-1.0, t)
    perfect = evaluate_cyclegan(lambda x: -x, lambda x: -x, a, b, labels, labels, paired=True,
                                classifier_a=clf_a, classifier_b=clf_b)
    for key in ("a_to_b", "b_to_a"):
        assert perfect[key]["model"]["psnr"] == np.inf and perfect[key]["model"]["l1"] == 0
        sec = perfect[key]
        assert sec["psnr_margin"] == np.inf and sec["l1_margin"] == min(
            sec["identity"]["l1"], sec["histogram"]["l1"]) > 0.5
    assert perfect["cycle"]["psnr_a"] == perfect["cycle"]["psnr_b"] == np.inf
    assert perfect["labels"] == {"g_of_a_as_a_label": 1.0, "f_of_b_as_b_label": 1.0,
                                 "real_a": 1.0, "real_b": 1.0}
    ident = evaluate_cyclegan(lambda x: x, lambda x: x, a, b, labels, labels, paired=True,
                              classifier_a=clf_a, classifier_b=clf_b)
    want = float(np.mean(tf.image.psnr((b + 1) / 2, (a + 1) / 2, 1.0)))
    assert ident["a_to_b"]["model"]["psnr"] == pytest.approx(want, abs=1e-4)
    assert ident["a_to_b"]["identity"] == ident["a_to_b"]["model"]
    assert ident["a_to_b"]["psnr_margin"] <= 0 and ident["cycle"]["psnr_a"] == np.inf
    assert ident["labels"]["g_of_a_as_a_label"] <= 0.75  # A's look, judged as B's: wrong
    # histogram matching: each image keeps its order of grey levels and takes B's distribution
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 8, 8, 1)).astype(np.float32)
    ref = np.tanh(rng.normal(0, 0.5, (50, 8, 8, 1))).astype(np.float32)
    m = histogram_match(x, ref)
    for i in range(3):
        assert (np.diff(m[i].ravel()[np.argsort(x[i].ravel())]) >= 0).all()  # monotone
        q = np.sort(m[i].ravel())
        assert np.abs(q - np.quantile(ref, (np.arange(64) + 1) / 64)).max() < 0.05


class _Identity:
    """A translator pair that changes nothing (cycles are perfect)."""

    def translate(self, images, direction="a_to_b"):
        return np.asarray(images, np.float32)


def test_folder_and_tfds_names_and_a_report_without_known_mapping(tmp_path):
    from tfgan_app.data import dataset_by_name
    from tfgan_app.evaluation.cyclegan import cyclegan_report

    root = str(tmp_path / "h2z")
    _folder(root)
    for split in ("testA", "testB"):
        _pngs(os.path.join(root, split), 16, n=3)
    ds, info = dataset_by_name(f"unpaired-folder:{root}", batch_size=2, seed=0,
                               image_size=16)
    a, b = next(iter(ds))
    assert a.shape == b.shape == (2, 16, 16, 1) and info["name"] == f"unpaired-folder:{root}"
    rep = cyclegan_report(_Identity(), info)
    assert rep["num_a"] == rep["num_b"] == 3 and "testA" in rep["heldout"]
    assert rep["cycle"]["psnr_a"] is None and rep["cycle"]["l1_b"] == 0  # inf -> null
    assert "a_to_b" not in rep and "labels" not in rep  # no known mapping, no labels
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        ds, info = dataset_by_name("unpaired-tfds:horse2zebra", batch_size=2, seed=0,
                                   image_size=8)
        assert info["tfds_name"] == "cycle_gan/horse2zebra" and info["unpaired"]
        assert cyclegan_report(_Identity(), info)["heldout"] is None
    with pytest.raises(ValueError, match=r"unpaired-tfds: unknown option\(s\) \['crop'\]"):
        dataset_by_name("unpaired-tfds:horse2zebra", crop=4)


def test_one_epoch_mixed_float16_is_finite_with_loss_scaling(tmp_path):
    """Mixed precision as GANModel's (tests/test_distribute.py): float16 compute in all four
    networks, logits of both discriminators in float32, both optimizers loss-scaled, finite
    losses, and the global policy restored afterwards."""
    import keras

    from tfgan_app import train

    settings = train.resolve_settings(None, overrides=[*_SETS, "report=null"],
                                      dataset="unpaired:digits:test", batch_size=32, epochs=1,
                                      mixed_precision="mixed_float16")
    result = train.train(settings, str(tmp_path / "run"), verbose=0)
    gan, hist = result["gan"], result["history"]
    assert all(np.isfinite(hist[k][0]) for k in ("g_loss", "d_loss", "cycle", "d_a", "d_b"))
    for net in (gan.generator_ab, gan.generator_ba, gan.discriminator_a, gan.discriminator_b):
        assert any(layer.compute_dtype == "float16" for layer in net.layers), net.name
    for disc in (gan.discriminator_a, gan.discriminator_b):
        assert disc.outputs[0].dtype == "float32", disc.name  # logits in float32
    lso = keras.optimizers.LossScaleOptimizer
    assert isinstance(gan.d_optimizer, lso) and isinstance(gan.g_optimizer, lso)
    assert int(gan.d_optimizer.iterations) >= 1 and float(gan.g_optimizer.dynamic_scale) > 0
    assert keras.config.dtype_policy().name == "float32"
    # the translation still runs (float32 in, float32 out)
    out = gan.translate(np.zeros((2, 16, 16, 1), np.float32))
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_image_to_image_runs_do_not_inherit_the_default_presets_r1():
    """The default preset's lazy R1 is its own model's recipe: a translation run started from
    it (the module's runs above) trains without it; an R1 set for the run stays."""
    from tfgan_app import train

    inherited = train.resolve_settings(None)
    assert inherited["r1_gamma"] > 0
    assert train._unconditional_recipe_off(inherited) == {"r1_gamma": 0.0, "r1_interval": 1}
    chosen = train.resolve_settings(None, overrides=["r1_gamma=1.0"])
    assert train._unconditional_recipe_off(chosen) == {"r1_interval": 1}
    assert train._unconditional_recipe_off(train.resolve_settings("digits-cyclegan")) == {}
