"""`tfgan-app sample --input`, `evaluate` and `tune` for image-to-image translation runs.

One small digits-edges run (16x16 digits, narrow U-Net/PatchGAN, 3 epochs) is trained once
through the CLI; the tests read it back through the CLI and the evaluation API.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tfgan_app.cli import main

_TINY = ["--set", "dataset_options.image_size=16", "--set", "generator.base_filters=16",
         "--set", "generator.max_filters=64", "--set", "discriminator.base_filters=8",
         "--set", "discriminator.receptive_field=16"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("translation") / "edges")
    assert main(["train", "--preset", "digits-edges", "--out", out, "--epochs", "3",
                 "--quiet", *_TINY]) == 0
    return out


def _images_folder(path):
    rng = np.random.default_rng(0)
    os.makedirs(path)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
        os.path.join(path, "colour.png"))
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(
        os.path.join(path, "gray.jpg"), quality=95)
    with open(os.path.join(path, "notes.txt"), "w") as f:
        f.write("not an image")
    return path


def test_sample_input_translates_a_folder_and_a_file(run_dir, tmp_path, capsys):
    from tfgan_app.images import read_image
    from tfgan_app.rundir import RunDir

    folder = _images_folder(str(tmp_path / "mine"))
    out = str(tmp_path / "translated")
    assert main(["sample", run_dir, "--input", folder, "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "translated 2 images" in printed and "converted 1 image(s) to grayscale" in printed
    assert sorted(os.listdir(out)) == ["colour.png", "gray.png"]
    translator = RunDir(run_dir).translator()
    for name, src in (("colour.png", "colour.png"), ("gray.png", "gray.jpg")):
        with Image.open(os.path.join(out, name)) as im:
            assert im.mode == "L" and im.size == (16, 16)
            written = np.asarray(im, np.int16)
        x = read_image(os.path.join(folder, src), 1)[0].astype(np.float32) / 127.5 - 1.0
        expected = np.round((translator.translate(x[None])[0, ..., 0] + 1.0) * 127.5)
        assert np.abs(written - expected).max() <= 1  # the model's output, one grey level
    # one image: the PNG --out, or by default RUN/samples/translated/<name>.png
    assert main(["sample", run_dir, "--input", os.path.join(folder, "gray.jpg"), "--out",
                 str(tmp_path / "one.png")]) == 0
    assert Image.open(tmp_path / "one.png").size == (16, 16)
    assert main(["sample", run_dir, "--input", os.path.join(folder, "colour.png")]) == 0
    assert os.path.isfile(os.path.join(run_dir, "samples", "translated", "colour.png"))


def test_sample_input_bad_images_exit_2_naming_the_file(run_dir, tmp_path, capsys):
    bad = tmp_path / "wide.png"
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(bad)
    assert main(["sample", run_dir, "--input", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "wide.png: a 20x24 (height x width) image" in err
    assert "16x16 (height x width) images with 1 channel" in err
    assert "Traceback" not in err
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not really")
    assert main(["sample", run_dir, "--input", str(corrupt)]) == 2
    assert "corrupt.png: could not be read as an image" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["sample", run_dir, "--input", str(empty)]) == 2
    assert "no PNG/JPEG images" in capsys.readouterr().err
    good = tmp_path / "ok.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(good)
    assert main(["sample", run_dir, "--input", str(good), "--out", str(tmp_path)]) == 2
    assert "is a folder; one image is translated into a PNG file" in capsys.readouterr().err
    assert main(["sample", run_dir, "--input", str(good), "--labels", "1"]) == 2


def test_sample_without_input_writes_a_triptych_of_held_out_pairs(run_dir, tmp_path):
    out = tmp_path / "tri.png"
    assert main(["sample", run_dir, "--out", str(out), "-n", "5"]) == 0
    with Image.open(out) as im:  # 3 columns x 5 rows of 16 px tiles, 1 px borders, x4
        assert im.size == ((3 * 17 + 1) * 4, (5 * 17 + 1) * 4)


def test_evaluate_reports_metrics_beside_the_baseline(run_dir, capsys):
    from tfgan_app.rundir import RunDir

    assert main(["evaluate", run_dir]) == 0
    table = capsys.readouterr().out
    assert "input baseline" in table and "real targets" in table and "accuracy" in table
    run = RunDir(run_dir)
    with open(run.path(run.EVAL)) as f:
        ev = json.load(f)
    keys = {"psnr", "ssim", "l1", "accuracy"}
    assert set(ev["metrics"]) == set(ev["baseline"]) == set(ev["floor"]) == keys
    assert ev["num_samples"] == 359 and ev["kind"] == "translation"
    gen, base, real = ev["metrics"], ev["baseline"], ev["floor"]
    # the edge map itself is a poor digit: even 3 small epochs beat it on every measure
    assert gen["psnr"] > base["psnr"] and gen["ssim"] > base["ssim"]
    assert gen["l1"] < base["l1"] and gen["accuracy"] >= base["accuracy"]
    assert real["psnr"] is None and real["l1"] == 0.0 and real["accuracy"] > 0.9
    # report.json (end of training) is the same computation
    rep = run.report()
    for k in keys:
        assert rep["model"][k] == pytest.approx(gen[k], abs=1e-6)
        assert rep["baseline"][k] == pytest.approx(base[k], abs=1e-9)
    assert set(ev["protocol"]) >= keys | {"floor", "baseline", "classifier"}


def test_evaluator_without_labels_and_on_the_baseline_itself():
    from tfgan_app.data.paired import derived_pairs, naive_translation
    from tfgan_app.evaluation import Evaluator, TranslationEvaluator, default_metrics

    info = derived_pairs("photos", {"name": "superres", "factor": 4}, image_size=16,
                         num_patches=64, batch_size=32)[1]
    ev = Evaluator(info, num_samples=40)
    assert isinstance(ev, TranslationEvaluator) and ev.metrics == ("psnr", "ssim", "l1")
    assert default_metrics(info) == ev.metrics  # photos have no labels: no accuracy
    assert ev.sources.shape == (40, 4, 4, 3) and ev.targets.shape == (40, 16, 16, 3)
    same = ev.evaluate(lambda s: naive_translation(s, (16, 16, 3)))
    assert same == ev.baseline() and 10 < same["psnr"] < 40
    worse = ev.evaluate(lambda s: np.zeros((len(s), 16, 16, 3), np.float32))
    assert worse["l1"] > same["l1"] and worse["psnr"] < same["psnr"]
    with pytest.raises(ValueError, match="needs class labels.*has no class labels"):
        Evaluator(info, metrics="accuracy")
    with pytest.raises(ValueError, match="translated images have shape"):
        ev.evaluate(lambda s: np.zeros((len(s), 8, 8, 3), np.float32))


def test_psnr_is_the_translation_tuning_objective(run_dir):
    from tfgan_app import kinds
    from tfgan_app.evaluation.objective import OBJECTIVES, evaluate_objective, objective_key
    from tfgan_app.rundir import RunDir
    from tfgan_app.tuning import GANHyperModel

    assert kinds.TRANSLATION.default_objective == "psnr"
    assert objective_key("val_psnr", kinds.TRANSLATION) == "psnr"
    assert OBJECTIVES["psnr"] == ("psnr", "max") and OBJECTIVES["l1"] == ("l1", "min")
    with pytest.raises(ValueError, match="does not apply to translation"):
        objective_key("fid", kinds.TRANSLATION)
    hm = GANHyperModel("digits-inpaint")
    assert hm.objective.name == "val_psnr" and hm.objective.direction == "max"
    space = hm.search_space()
    assert "latent_dim" not in space and space["g_width"][1]["default"] == 32
    # a finished run scores as a trial would: the evaluate command's PSNR
    score = evaluate_objective(run_dir)
    assert score["val_psnr"] == pytest.approx(RunDir(run_dir).report()["model"]["psnr"])


def test_sample_input_through_a_saved_model_export(run_dir, tmp_path):
    folder = _images_folder(str(tmp_path / "mine"))
    assert main(["export", run_dir, "--out", str(tmp_path / "export")]) == 0
    assert main(["sample", run_dir, "--input", folder, "--out", str(tmp_path / "a")]) == 0
    assert main(["sample", "--saved-model", str(tmp_path / "export" / "1"), "--input", folder,
                 "--out", str(tmp_path / "b")]) == 0
    for name in ("colour.png", "gray.png"):  # the export translates as the run directory does
        a = np.asarray(Image.open(tmp_path / "a" / name), np.int16)
        b = np.asarray(Image.open(tmp_path / "b" / name), np.int16)
        assert a.shape == b.shape == (16, 16) and np.abs(a - b).max() <= 1
