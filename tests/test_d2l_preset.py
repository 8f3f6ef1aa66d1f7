"""The d2l-gaussian preset: quality over five seeds, and the run-directory contract via the CLI."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfgan_app import presets, train


@pytest.mark.slow
def test_d2l_gaussian_reaches_the_target_over_five_seeds(tmp_path):
    """Fréchet distance between the Gaussian fit of 10,000 generated points and N(b, A^T A):
    median <= 0.1 and worst <= 0.25 over seeds 0..4 (the preset's defaults, 20 epochs)."""
    values = []
    for seed in range(5):
        settings = train.resolve_settings("d2l-gaussian", seed=seed)
        result = train.train(settings, str(tmp_path / f"s{seed}"), verbose=0)
        values.append(result["report"]["frechet_distance"])
    print("d2l-gaussian Frechet distances, seeds 0-4:", [round(v, 4) for v in values])
    assert np.median(values) <= 0.1, values
    assert max(values) <= 0.25, values


@pytest.mark.slow
def test_cli_train_writes_the_run_directory(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "tfgan_app.cli", "train", "--preset", "d2l-gaussian", "--out",
         str(out), "--epochs", "3", "--seed", "1", "--set", "d_lr=0.04", "--quiet"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "target (b, A^T A)" in proc.stdout and "Frechet distance" in proc.stdout
    for name in ("config.json", "history.json", "generator.keras", "gan.keras", "report.json",
                 "plots/losses.png", "plots/scatter.png"):
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 3 and config["seed"] == 1 and config["d_lr"] == 0.04
    assert config["data"]["spec"]["covariance"] == [[1.01, 1.95], [1.95, 4.25]]
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2] and len(history["d_loss"]) == 3
    gen = keras.saving.load_model(str(out / "generator.keras"))
    assert gen.output_shape == (None, 2)
    png = (out / "plots" / "losses.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_presets_and_overrides():
    s = presets.get("d2l-gaussian")
    assert (s["batch_size"], s["epochs"], s["latent_dim"], s["d_lr"], s["g_lr"]) == (
        8, 20, 2, 0.05, 0.005)
    s2 = presets.apply_overrides(s, ["loss_options.label_smoothing=0.1", "loss=wasserstein"])
    assert s2["loss_options"]["label_smoothing"] == 0.1 and s2["loss"] == "wasserstein"
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        presets.apply_overrides(s, ["epoch=3"])
    with pytest.raises(ValueError, match="unknown preset"):
        presets.get("nope")


def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    from tfgan_app import cli

    assert cli.main(["train", "--preset", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert cli.main(["train", "--preset", "d2l-gaussian", "--set", "loss=bogus",
                     "--out", str(tmp_path)]) == 2
    assert "unknown GAN loss 'bogus'" in capsys.readouterr().err
