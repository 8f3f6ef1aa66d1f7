"""Hyperparameter search (tfgan_app.tuning): the search space and its mapping onto settings,
a search whose best trial retrains to the same objective, resume, chief/worker mode, failed
trials, and the three tuners."""

import collections
import json
import math
import os
import socket
import subprocess
import sys
import time

import keras_tuner as kt
import pytest

from tfgan_app import presets, train, tuning

CLI = [sys.executable, "-m", "tfgan_app.cli"]


def _cli(args, cwd, timeout=300):
    proc = subprocess.run(CLI + args, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def _runs(out):
    with open(os.path.join(out, tuning.RUNS_FILE), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ----------------------------------------------------------------------------- fast

def test_search_space_defaults_are_the_preset_and_map_onto_settings():
    for name in presets.names():
        hm = tuning.GANHyperModel(name)
        space = hm.search_space()
        defaults = {k: kw["default"] for k, (_, kw) in space.items()}
        # Untuned hyperparameters keep the preset's values.
        assert hm.settings_for(defaults) == train.resolve_settings(name), name
        # CycleGAN refuses d_steps and penalties; translation generators have no latent input
        cycle = hm.kind.name == "cyclegan"
        assert {"d_lr", "g_lr", "beta_1"} <= set(space), name
        assert ({"d_steps", "gradient_penalty"} <= set(space)) != cycle, name
        assert ("latent_dim" in space) == (hm.kind.name not in ("translation", "cyclegan")), name
        lo, hi = space["d_lr"][1]["min_value"], space["d_lr"][1]["max_value"]
        assert space["d_lr"][1]["sampling"] == "log"
        assert lo == pytest.approx(hm.base_settings["d_lr"] / 10)
        assert hi == pytest.approx(hm.base_settings["d_lr"] * 10)

    # Width: mlp hidden_units (scaled), dcgan base_filters, toy has none.
    # (ring preset: G and D 2 x 128, D packing 2; digits-dcgan: G 32 filters, D 64)
    ring = tuning.GANHyperModel("ring")
    assert ring.search_space()["g_width"][1]["values"] == [64, 128, 256]
    s = ring.settings_for({"g_width": 256, "d_width": 64})
    assert s["generator"] == {"builder": "mlp", "hidden_units": [256, 256]}
    # the width changes, the builder's other options (here packing) stay
    assert s["discriminator"] == {"builder": "mlp", "hidden_units": [64, 64], "pack": 2}
    dc = tuning.GANHyperModel("digits-dcgan")
    s = dc.settings_for({"g_width": 64, "latent_dim": 16, "d_steps": 2, "beta_1": 0.9})
    assert s["generator"]["base_filters"] == 64 and s["discriminator"]["base_filters"] == 64
    assert (s["latent_dim"], s["d_steps"], s["beta_1"]) == (16, 2, 0.9)
    d2l = tuning.GANHyperModel("d2l-gaussian")
    assert "g_width" not in d2l.search_space() and "d_width" not in d2l.search_space()

    # A loss switch keeps only the options the new loss accepts (d2l sets label_smoothing=0).
    s = d2l.settings_for({"loss": "wasserstein", "gradient_penalty": 10.0})
    assert s["loss"] == "wasserstein" and s["loss_options"] == {}
    assert s["gradient_penalty"] == 10.0
    assert d2l.settings_for({"loss": "minimax"})["loss_options"] == {"label_smoothing": 0.0}
    # Extension: any settings key (dotted keys nest); other names are errors.
    s = d2l.settings_for({"batch_size": 16, "generator.init_std": 0.1})
    assert s["batch_size"] == 16 and s["generator"] == {"builder": "toy", "init_std": 0.1}
    with pytest.raises(ValueError, match="neither in the default search space"):
        d2l.settings_for({"learning_rate": 0.1})

    # best.json's settings reproduce the trial's settings through train's --config path.
    values = {"d_lr": 0.01, "g_lr": 0.002, "loss": "least_squares", "latent_dim": 4}
    hm = tuning.GANHyperModel("d2l-gaussian", overrides={"epochs": 3})
    over = hm.overrides_for(values)
    assert over["epochs"] == 3 and over["d_lr"] == 0.01 and over["latent_dim"] == 4
    assert train.resolve_settings("d2l-gaussian", config=over) == hm.settings_for(values)
    assert hm.overrides_for({**values, "tuner/epochs": 2, "tuner/trial_id": "0"})["epochs"] == 2


def test_objectives_narrowing_and_cli_arguments():
    assert tuning.GANHyperModel("d2l-gaussian").objective == kt.Objective("val_frechet", "min")
    assert tuning.GANHyperModel("digits-dcgan").objective == kt.Objective("val_fid", "min")
    assert tuning.GANHyperModel("grid", objective="val_modes_captured").objective == \
        kt.Objective("val_modes_captured", "max")
    with pytest.raises(ValueError, match="does not apply to images"):
        tuning.GANHyperModel("digits-dcgan", objective="frechet")
    with pytest.raises(ValueError, match="unknown objective"):
        tuning.GANHyperModel("ring", objective="loss")
    with pytest.raises(ValueError, match="cannot tune"):
        tuning.GANHyperModel("d2l-gaussian", tune="g_width")

    # A hyperparameter declared before the default one wins; tune= limits the defaults.
    hm = tuning.GANHyperModel("ring", tune=("d_lr", "loss"))
    hp = kt.HyperParameters()
    hp.Fixed("loss", "least_squares")
    values = hm.declare_hyperparameters(hp)
    assert set(values) == {"d_lr", "loss"} and values["loss"] == "least_squares"
    assert values["d_lr"] == presets.get("ring")["d_lr"]  # default = the preset's value

    from tfgan_app.cli import build_parser
    from tfgan_app.cli import tune as cli_tune

    args = build_parser().parse_args(
        ["tune", "--preset", "ring", "--tuner", "hyperband", "--max-trials", "5", "--resume",
         "--epochs", "4", "--set", "batch_size=128", "--distributed", "worker",
         "--tuner-id", "tuner1", "--oracle-address", "127.0.0.1:8000"])
    assert args.func is cli_tune._cmd_tune
    assert (args.tuner, args.max_trials, args.resume, args.epochs, args.overrides) == (
        "hyperband", 5, True, 4, ["batch_size=128"])
    assert tuning.distributed_env("worker", "127.0.0.1:8000", "tuner1") == {
        "KERASTUNER_TUNER_ID": "tuner1", "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": "8000"}
    assert tuning.distributed_env("chief", "10.0.0.1:9")["KERASTUNER_TUNER_ID"] == "chief"
    with pytest.raises(ValueError, match="must not contain 'chief'"):
        tuning.distributed_env("worker", "127.0.0.1:8000", "chief1")
    with pytest.raises(ValueError, match="HOST:PORT"):
        tuning.distributed_env("worker", "127.0.0.1")


def test_a_trial_and_a_run_directory_are_scored_through_the_same_sampler():
    """The trial scores the GANModel (``generate``); evaluate_objective scores
    ``RunDir.sampler()``, a ``sampling.Sampler`` over the same (EMA) generator: same latent
    vectors, same value. Objectives apply where the kind has their metric."""
    from tfgan_app import kinds
    from tfgan_app.evaluation.objective import make_evaluator, objective_key, score
    from tfgan_app.sampling import Sampler

    hm = tuning.GANHyperModel("d2l-gaussian", overrides={"epochs": 1})
    hp = kt.HyperParameters()
    gan = hm.build(hp)
    info = hm._last[3]
    trial = hm.evaluate(gan, info)
    assert set(trial) >= {"val_frechet"} and math.isfinite(trial["val_frechet"])
    sampler = Sampler(gan.sampling_generator, gan.latent_dim, gan.num_classes)
    ev = make_evaluator(info, "frechet")
    assert score(ev, sampler, seed=hm.eval_seed) == trial

    assert objective_key("val_kid", kinds.kind_of("ring")) == "kid"
    assert objective_key("kid", kinds.kind_of("digits")) == "kid"
    with pytest.raises(ValueError, match="does not apply to points data; valid: frechet"):
        objective_key("fid", kinds.kind_of("gaussian"))


# ----------------------------------------------------------------------------- searches

@pytest.mark.slow
def test_search_best_json_retrains_to_the_recorded_objective(tmp_path):
    """3 random trials on d2l-gaussian (5 epochs each, Fréchet distance to fresh exact samples
    of N(b, A^T A)); `train --config best.json` then reproduces the best trial's value.

    "Within noise": training is deterministic for a seed on CPU (same seed -> same initial
    weights, data order and noise; sampling for the evaluation uses a fixed seed), so the
    retrained run must give the recorded value up to float round-off (measured: identical).
    The tolerance (1e-3 relative) is far below the seed-to-seed spread of this objective.
    """
    out = tmp_path / "search"
    proc = _cli(["tune", "--preset", "d2l-gaussian", "--tuner", "random", "--max-trials", "3",
                 "--epochs", "5", "--out", str(out), "--verbose", "0"], cwd=tmp_path)
    assert "val_frechet" in proc.stdout and "best: trial" in proc.stdout, proc.stdout
    rows = tuning.load_trials(str(out))
    assert [r["trial_id"] for r in rows] == ["0", "1", "2"]
    for r in rows:
        assert r["status"] == "COMPLETED", r
        assert math.isfinite(r["score"]) and r["score"] == r["metrics"]["val_frechet"], r
        assert r["runs"] == 1 and r["tuner_id"] == "tuner0"
    best = json.loads((out / "best.json").read_text())
    assert best["objective"] == {"name": "val_frechet", "direction": "min"}
    assert best["value"] == min(r["score"] for r in rows)
    assert best["settings"]["epochs"] == 5
    # The table printed the best trial with a star.
    assert f"*{best['trial_id']} " in proc.stdout

    # --resume continues the search: one more trial, the earlier ones are not re-run.
    with pytest.raises(ValueError, match="already holds a search"):
        tuning.search("d2l-gaussian", max_trials=3, out=str(out), epochs=5)
    _cli(["tune", "--preset", "d2l-gaussian", "--max-trials", "4", "--epochs", "5",
          "--out", str(out), "--resume", "--verbose", "0"], cwd=tmp_path)
    rows = tuning.load_trials(str(out))
    assert [r["trial_id"] for r in rows] == ["0", "1", "2", "3"]
    assert all(r["runs"] == 1 and r["status"] == "COMPLETED" for r in rows)
    best = json.loads((out / "best.json").read_text())
    assert best["value"] == min(r["score"] for r in rows)

    run = tmp_path / "retrained"
    _cli(["train", "--preset", "d2l-gaussian", "--config", str(out / "best.json"),
          "--out", str(run), "--quiet"], cwd=tmp_path)
    config = json.loads((run / "config.json").read_text())
    for key, value in best["settings"].items():
        assert config[key] == value, key
    again = tuning.evaluate_objective(str(run))["val_frechet"]
    print(f"search recorded {best['value']:.6f}, retrained {again:.6f}")
    assert again == pytest.approx(best["value"], rel=1e-3, abs=1e-6)
    # For the toy sets the objective is exactly `tfgan-app evaluate RUN --metrics frechet`.
    from tfgan_app.evaluation import evaluate_run

    assert evaluate_run(str(run), metrics="frechet", write=False)["metrics"]["frechet"] == \
        pytest.approx(again, rel=1e-9)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port, proc, deadline):
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_chief_and_two_workers_share_one_oracle(tmp_path):
    out = tmp_path / "search"
    port = _free_port()
    common = ["tune", "--preset", "d2l-gaussian", "--max-trials", "4", "--epochs", "3",
              "--out", str(out), "--oracle-address", f"127.0.0.1:{port}", "--verbose", "0"]
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("chief", "w0", "w1")}
    procs = {}
    deadline = time.time() + 400
    try:
        procs["chief"] = subprocess.Popen(CLI + common + ["--distributed", "chief"],
                                          stdout=logs["chief"], stderr=subprocess.STDOUT,
                                          cwd=tmp_path)
        assert _wait_for_port(port, procs["chief"], time.time() + 180), \
            (tmp_path / "chief.log").read_text()[-3000:]
        for i in (0, 1):
            procs[f"w{i}"] = subprocess.Popen(
                CLI + common + ["--distributed", "worker", "--tuner-id", f"tuner{i}"],
                stdout=logs[f"w{i}"], stderr=subprocess.STDOUT, cwd=tmp_path)
        for name, p in procs.items():
            p.wait(timeout=max(1, deadline - time.time()))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
        for f in logs.values():
            f.close()
    text = {n: (tmp_path / f"{n}.log").read_text() for n in logs}
    for name, p in procs.items():
        assert p.returncode == 0, (name, text[name][-3000:])

    runs = _runs(str(out))
    counts = collections.Counter(r["trial_id"] for r in runs)
    assert sorted(counts) == ["0", "1", "2", "3"] and set(counts.values()) == {1}, runs
    by_tuner = collections.Counter(r["tuner_id"] for r in runs)
    assert set(by_tuner) == {"tuner0", "tuner1"}, runs  # both workers ran trials
    assert len({r["pid"] for r in runs}) == 2
    assert procs["chief"].pid not in {r["pid"] for r in runs}  # the chief trains nothing
    # All results are in one place: the chief's oracle wrote every trial.json and best.json,
    # with the values the workers computed.
    rows = tuning.load_trials(str(out))
    assert len(rows) == 4
    ran = {r["trial_id"]: r for r in runs}
    for r in rows:
        assert r["status"] == "COMPLETED" and math.isfinite(r["score"]), r
        assert r["score"] == pytest.approx(ran[r["trial_id"]]["objective"], rel=1e-12)
    best = json.loads((out / "best.json").read_text())
    assert best["value"] == min(r["score"] for r in rows)
    assert "4 trial(s)" in text["chief"]
    assert sum(int(t.split(" ran ")[1].split(" ")[0]) for n, t in text.items()
               if n != "chief") == 4


@pytest.mark.slow
def test_failed_trial_is_recorded_and_the_search_goes_on(tmp_path):
    """Grid over d_lr (0.05, 1e38, 0.02): Adam with a learning rate of 1e38 overflows the
    weights and the losses become NaN in the first epoch (measured)."""
    hm = tuning.GANHyperModel("d2l-gaussian", overrides={"epochs": 2}, tune=())
    hp = kt.HyperParameters()
    hp.Choice("d_lr", [0.05, 1e38, 0.02], default=0.05)
    tuner = tuning.make_tuner(hm, "grid", max_trials=3, directory=str(tmp_path),
                              project_name="s", hyperparameters=hp)
    tuner.search(verbose=0)
    rows = tuning.load_trials(str(tmp_path / "s"))
    assert [(r["hyperparameters"]["d_lr"], r["status"]) for r in rows] == [
        (0.05, "COMPLETED"), (1e38, "FAILED"), (0.02, "COMPLETED")]
    assert "non-finite training losses" in rows[1]["message"], rows[1]["message"]
    assert rows[1]["score"] is None and "val_frechet" not in rows[1]["metrics"]
    assert all(math.isfinite(r["score"]) for r in (rows[0], rows[2]))
    assert tuning.best_trial(rows, "min")["trial_id"] in ("0", "2")
    assert tuner.get_best_hyperparameters()[0].values["d_lr"] != 1e38
    assert "FAILED" in tuning.format_trials(rows)

    # A finite-loss trial whose objective is NaN fails as well (keras-tuner alone would
    # retry it as INVALID, and would accept an infinite score).
    hm.evaluate = lambda gan, info: {"val_frechet": float("nan")}
    hp2 = kt.HyperParameters()
    with pytest.raises(kt.errors.FailedTrialError, match="not finite"):
        hm.fit(hp2, hm.build(hp2), epochs=1)


@pytest.mark.slow
def test_bayesian_and_hyperband(tmp_path):
    """Both tuners run GANHyperModel; Hyperband continues a trial from its checkpoint
    (``tuner/trial_id``, ``initial_epoch`` > 0) and best.json's epochs are the total."""
    r = tuning.search("d2l-gaussian", "bayesian", max_trials=3, out=str(tmp_path / "b"),
                      epochs=2, tune="d_lr,g_lr", num_initial_points=2)
    assert len(r["trials"]) == 3 and all(t["status"] == "COMPLETED" for t in r["trials"])
    assert r["best"]["value"] == min(t["score"] for t in r["trials"])

    r = tuning.search("d2l-gaussian", "hyperband", max_trials=4, out=str(tmp_path / "h"),
                      epochs=3, tune="d_lr,g_lr")
    rows = r["trials"]
    assert len(rows) == 4 and all(t["status"] == "COMPLETED" for t in rows)
    continued = [t for t in rows if "tuner/trial_id" in t["hyperparameters"]]
    assert continued, rows
    runs = {x["trial_id"]: x for x in _runs(str(tmp_path / "h"))}
    for t in continued:
        assert runs[t["trial_id"]]["initial_epoch"] == t["hyperparameters"]["tuner/initial_epoch"] > 0
    best = r["best"]
    assert best["settings"]["epochs"] == best["hyperparameters"]["tuner/epochs"]
