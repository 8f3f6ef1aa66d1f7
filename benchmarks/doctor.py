"""The training doctor on induced failures and on healthy runs: right name, early, no false alarm.

Usage: python benchmarks/doctor.py [--cases NAME,...] [--seeds 3] [--healthy-seeds 5]
                                   [--full] [--part PATH] [--combine PARTS] [--overhead N]

Each induced failure (issue #17) is trained over seeds 0..N-1 with ``tfgan-app train``'s job
(:func:`tfgan_app.train.train`, doctor on) and passes when the expected diagnosis fires within
the first third of the run and no other diagnosis fires:

1. ``vanishing``: digits, the saturating ``minimax`` loss (no smoothing) against a
   discriminator given a head start (5 D steps per G step at 10x the preset's rate);
2. ``collapse``: the ring without the remedies its preset uses (no packing, no lr decay, no
   label smoothing: ``tfgan_app.presets.MIXTURE_BASELINE`` with ``label_smoothing=0``) and a
   generator learning rate 5x its discriminator's: the generator hops from mode to mode, its
   samples in one or two of the 8 modes' regions. (The plain baseline does not collapse on
   the ring, 8/8 in benchmarks/results/mode_collapse.md; on the grid shortened to 1,500 steps
   its samples cover every mode's region, only not sharply yet: not a collapse.)
3. ``d_lr_50x``: the digits preset with a discriminator learning rate 50x the preset's
   (``oscillation`` or ``divergence`` expected);
4. ``overfit``: the digits preset on a 64-image subset without augmentation, planned for
   4,800 epochs (6x the 800 the preset had when the case was set; 4,800 steps of batch 64,
   a quarter of its 17,600) and stopped at the first diagnosis, as ``--doctor fix`` stops it (Python API:
   ``tg.callbacks.Doctor`` with the held-out test split). (At 1,200 epochs D's held-out gap
   passes the 1.0 threshold only at epoch ~720, past the first third: the case is a run
   several times longer than the preset, as issue #17 describes it.)
5. ``absurd_lr``: learning rates of 10 (``divergence``: training stops, exit status 3 on the
   command line; the column "stopped (newest backup)" gives the epoch of the backup left on
   disk -- none when the first epoch already diverges; ``tests/test_doctor.py`` checks that a
   run diverging later keeps the backup from before the divergence).

Healthy runs: the ring, grid, digits-dcgan, digits-cgan and d2l-gaussian presets' recipes with
``--healthy-seeds`` seeds (fewer for the slow ones, ``HEALTHY_SEEDS``); the count of
diagnoses is the false-alarm count. The runs are shortened (``HEALTHY_EPOCHS``, and 6,400
points for the 2-D mixtures) to keep the benchmark on a shared 2-core machine; the doctor's
warm-up and window scale with the planned epochs. The shortened grid preset (1,500 steps of
its 78,000) has not spread over the 25 modes yet: a diagnosis there is not a false alarm of
the full recipe.

``--full`` runs the healthy presets at their own full recipes instead (the preset's epochs and
data: the ring and grid's 100,000 points for 200 epochs, digits-dcgan's epochs (800 in the
recorded rows, before the preset's InfoGAN code; 600 since),
digits-cgan's 300; the MNIST presets on ``../shared/data/mnist``, the real MNIST test set),
recorded as ``PRESET:full``; ``--healthy-seed-list 3,4`` picks the seeds (to split the work
over several processes; ``--combine`` merges the parts seed by seed). These are the false
alarms the acceptance counts.

``--fix``: ``collapse`` and ``vanishing`` again with ``--doctor fix`` (the closed loop):
restarts made (from scratch, or resumed from the last backup -- written every epoch here --
when the remedy keeps the networks), and modes captured (ring) / the last epoch's ``|grad G|``
over its peak.

``--overhead EPOCHS`` times the digits preset (its own settings, bookkeeping included) with
the doctor on against off in one process: alternated, ``--repeats`` times each after a warm-up
pair; the ratio of the medians (and the median of each pair's ratio), the doctor's own share
of the time, the load average beside them, recorded under ``overhead[EPOCHS]`` (600: the
preset's own length; 100: a short run, where the one-off set-up weighs more). Run it on a
quiet machine; ``--quick`` (a smoke run) writes to the temporary directory.

Writes benchmarks/results/doctor.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import MNIST_IDX, RESULTS, cpu_name, table, write  # noqa: E402

TOY_N = 6_400  # points of the 2-D mixtures (25 steps of 256 per epoch)
QUIET = {"plot_every": 1000, "backup_every": 1000}


def _toy(preset, **over):
    return {"preset": preset, "dataset_options": {"n": TOY_N}, **QUIET, **over}


def _collapsing_ring(**over):
    """The ring without its preset's remedies (no packing, no decay, no label smoothing) and
    a generator 5x faster than its discriminator: it hops from mode to mode."""
    from tfgan_app import presets

    return {"preset": "ring", "config": {**presets.defaults(), "dataset": "ring",
                                         **presets.MIXTURE_BASELINE},
            "dataset_options": {"n": TOY_N}, "loss_options": {"label_smoothing": 0.0},
            "g_lr": 5e-3, **QUIET, **over}


#: name -> (expected diagnoses (any of), run description)
CASES = {
    "vanishing": (("vanishing_gradients",),
                  {"preset": "digits-dcgan", "epochs": 30, "loss": "minimax",
                   "loss_options": {"label_smoothing": 0.0}, "d_steps": 5, "d_lr": 2e-3,
                   **QUIET}),
    "collapse": (("mode_collapse",), _collapsing_ring(epochs=60)),
    "d_lr_50x": (("oscillation", "divergence"),
                 {"preset": "digits-dcgan", "epochs": 30, "d_lr": 1e-2, **QUIET}),
    "overfit": (("discriminator_overfitting",), {"python": "overfit", "epochs": 4800}),
    "absurd_lr": (("divergence",),
                  {"preset": "digits-dcgan", "epochs": 30, "d_lr": 10.0, "g_lr": 10.0,
                   "backup_every": 1}),
}

HEALTHY_EPOCHS = {"ring": 60, "grid": 60, "digits-dcgan": 40, "digits-cgan": 30,
                  "d2l-gaussian": 20}
#: Seeds of the healthy runs (the digits presets, the slowest, get fewer on a shared CPU).
HEALTHY_SEEDS = {"grid": 1}


def _settings(desc, seed):
    from tfgan_app import train

    desc = dict(desc)
    preset, config = desc.pop("preset"), desc.pop("config", None)
    return train.resolve_settings(preset, config=config, seed=seed, **desc)


def run_settings(desc, seed) -> dict:
    """Train one run through :func:`tfgan_app.train.train`; its diagnoses and signals."""
    from tfgan_app import train
    from tfgan_app.rundir import RunDir
    from tfgan_app.utils import NonFiniteError, read_json

    settings = _settings(desc, seed)
    if "backup_seconds" in settings:  # backups on their epochs, not throttled by time
        settings["backup_seconds"] = 0.0
    with tempfile.TemporaryDirectory() as out:
        stopped, kept = None, None
        t0 = time.time()
        try:
            train.train(settings, out, verbose=0)
        except NonFiniteError as e:
            stopped = str(e)
            from tfgan_app import checkpoint

            found = checkpoint.latest_backup(os.path.join(out, RunDir.BACKUP))
            kept = None if found is None else int(found[1]["epoch"])
        doc = read_json(os.path.join(out, RunDir.DOCTOR))
        history = read_json(os.path.join(out, RunDir.HISTORY)) if os.path.isfile(
            os.path.join(out, RunDir.HISTORY)) else {}
    return {"epochs": int(settings["epochs"]), "diagnoses": doc["diagnoses"],
            "stopped": stopped, "backup_epoch": kept, "doctor_seconds": doc["seconds"],
            "seconds": round(time.time() - t0, 1), "history": history}


def run_overfit(epochs, seed, subset=64) -> dict:
    """Digits preset on ``subset`` training images, with the Python API, planned for
    ``epochs`` epochs and stopped at the first diagnosis (as ``--doctor fix`` stops it)."""
    import keras

    import tfgan_app as tg
    from tfgan_app import train
    from tfgan_app.evaluation.classifiers import digits_classifier

    settings = train.resolve_settings("digits-dcgan", seed=seed, epochs=epochs,
                                      steps_per_execution=1)
    x, _ = tg.data.load_digits_arrays("train")
    x = x[:subset]
    held, _ = tg.data.load_digits_arrays("test")
    keras.utils.set_random_seed(seed)
    ds = tg.data.from_arrays(x, batch_size=64, seed=seed)
    gan = train.build_gan(settings, {"data_shape": [8, 8, 1], "num_examples": subset})
    doc = tg.callbacks.Doctor(x, held, classifier=digits_classifier(),
                              every=tg.doctor.probe_every(epochs), verbose=True, fix=True)
    t0 = time.time()
    h = gan.fit(ds, epochs=epochs, verbose=0, callbacks=[doc]).history
    return {"epochs": epochs, "epochs_run": len(h["d_loss"]), "diagnoses": doc.diagnoses,
            "stopped": None,
            "backup_epoch": None, "doctor_seconds": round(doc.seconds, 2),
            "seconds": round(time.time() - t0, 1), "history": {"epoch": list(range(epochs)),
                                                              **h}}


def judge(expected, result) -> dict:
    names = [d["name"] for d in result["diagnoses"]]
    right = [d for d in result["diagnoses"] if d["name"] in expected]
    early = bool(right) and right[0]["epoch"] <= result["epochs"] / 3
    others = [n for n in names if n not in expected]
    ok = early and not others
    if "divergence" in expected and expected == ("divergence",):
        ok = ok and result["stopped"] is not None
    return {"names": names, "first_epoch": right[0]["epoch"] if right else None, "early": early,
            "others": others, "pass": ok}


def _summary_signals(history):
    keep = ("g_grad_norm", "d_fake", "doctor_grad_ratio", "doctor_modes", "doctor_modes_hq",
            "doctor_quality", "doctor_classes", "doctor_diversity", "doctor_overfit", "doctor_copying",
            "doctor_oscillation", "doctor_swing", "doctor_probe", "d_loss")
    out = {k: [round(float(v), 4) for v in history[k]] for k in keep if k in history}
    return _probed_only(out)


def _probed_only(signals: dict) -> dict:
    """``signals`` at the probed epochs only (their indices under ``epoch``): between probes the
    doctor's signals repeat the last probe's values, and a full run's every epoch made
    ``doctor.json`` megabytes long."""
    probed = signals.get("doctor_probe")
    if not probed or "epoch" in signals:
        return signals
    keep = [i for i, p in enumerate(probed) if p]
    return {"epoch": keep, **{k: [v[i] for i in keep] for k, v in signals.items()}}


def run_fix(name, seed) -> dict:
    """``name``'s run with ``--doctor fix``: the restarts and the final state."""
    from tfgan_app.doctor import fix
    from tfgan_app.rundir import RunDir
    from tfgan_app.utils import read_json

    settings = _settings(CASES[name][1], seed)
    # a backup after every epoch: a remedy that keeps the networks resumes from the last one
    settings.update(backup_every=1, **({"backup_seconds": 0.0} if "backup_seconds" in settings
                                       else {}))
    with tempfile.TemporaryDirectory() as out:
        t0 = time.time()
        result = fix.train(settings, out, verbose=0)
        history = read_json(os.path.join(out, RunDir.HISTORY))
    g = history.get("g_grad_norm") or [0.0]
    report = result["report"]
    return {"restarts": len(result["doctor_fixes"]), "fixes": result["doctor_fixes"],
            "fixed": result["doctor_fixed"], "diagnoses_last": report.get("diagnoses"),
            "modes_captured": report.get("modes_captured"), "num_modes": report.get("num_modes"),
            "last_grad_over_peak": float(g[-1] / max(g)) if max(g) > 0 else 0.0,
            "d_fake_last": (history.get("d_fake") or [None])[-1],
            "seconds": round(time.time() - t0, 1)}


def overhead(epochs: int = 100, repeats: int = 5, preset: str = "digits-dcgan") -> dict:
    """Wall time of ``tfgan-app train``'s job for ``preset`` (``epochs`` epochs, its own
    bookkeeping settings) with the doctor on and off, in this process, alternated (off, on,
    off, on, ...) ``repeats`` times each after one warm-up pair; the ratio of the medians and
    the doctor's own time (``doctor.json`` ``seconds``) as a share of the runs with it."""
    import statistics

    from tfgan_app import train
    from tfgan_app.rundir import RunDir
    from tfgan_app.utils import read_json

    times, own = {"on": [], "off": []}, []
    for i in range(repeats + 1):
        for mode in ("off", "on"):
            settings = _settings({"preset": preset, "epochs": epochs, "doctor": mode}, 0)
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                train.train(settings, out, verbose=0)
                took = time.perf_counter() - t0
                if i and mode == "on":
                    own.append(read_json(os.path.join(out, RunDir.DOCTOR))["seconds"] / took)
            if i:  # the first pair warms the caches up
                times[mode].append(took)
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    return {"preset": preset, "epochs": epochs, "repeats": repeats, "seconds": times,
            "ratio_of_medians": on / off,
            # each "on" run against the "off" run just before it: drift between pairs cancels
            "ratio_of_pairs_median": statistics.median(
                a / b for a, b in zip(times["on"], times["off"])),
            "doctor_share_median": statistics.median(own)}


def _save_part(args, induced, healthy, fixes):
    """Write what is measured so far to ``--part`` (a killed process keeps its rows)."""
    if args.part:
        with open(args.part, "w") as f:
            json.dump({"induced": induced, "healthy": healthy, "fix": fixes}, f)


def measure(args) -> dict:
    """Run what ``args`` asks; the raw results."""
    induced, healthy, fixes = {}, {}, {}
    for name in [c for c in args.cases.split(",") if c]:
        expected, desc = CASES[name]
        runs = []
        for seed in range(args.seeds):
            r = (run_overfit(desc["epochs"], seed) if desc.get("python")
                 else run_settings(desc, seed))
            r.update(judge(expected, r))
            r["signals"] = _summary_signals(r.pop("history"))
            runs.append(r)
            print(f"{name} seed {seed}: {r['names']} first epoch {r['first_epoch']}/"
                  f"{r['epochs']} pass={r['pass']} ({r['seconds']} s)", flush=True)
        induced[name] = {"expected": list(expected), "runs": runs}
        _save_part(args, induced, healthy, fixes)
    seeds = [int(s) for s in args.healthy_seed_list.split(",")] if args.healthy_seed_list else None
    for preset in [c for c in args.healthy.split(",") if c]:
        runs = []
        key = f"{preset}:full" if args.full else preset
        n_seeds = args.healthy_seeds if args.full else min(args.healthy_seeds,
                                                             HEALTHY_SEEDS.get(preset, 99))
        for seed in seeds or range(n_seeds):
            if args.full:  # the preset's own recipe: its epochs and data, bookkeeping quiet
                # plot_seconds=0: history every epoch and the doctor probing every due epoch
                # (no time budget), so the count does not depend on the machine's load
                desc = {"preset": preset, **QUIET, "plot_seconds": 0.0}
                if preset.startswith("mnist"):  # the TFDS presets on the shared IDX files
                    desc["dataset"] = MNIST_IDX
            else:
                desc = {"preset": preset, "epochs": HEALTHY_EPOCHS[preset], **QUIET}
                if preset in ("ring", "grid"):
                    desc["dataset_options"] = {"n": TOY_N}
            r = run_settings(desc, seed)
            r["signals"] = _summary_signals(r.pop("history"))
            r["names"] = [d["name"] for d in r["diagnoses"]]
            r["seed"] = seed
            runs.append(r)
            print(f"healthy {key} seed {seed}: {r['names']} ({r['seconds']} s)", flush=True)
            healthy[key] = {"runs": runs}
            _save_part(args, induced, healthy, fixes)
    for name in [c for c in args.fix.split(",") if c]:
        fixes[name] = [run_fix(name, seed) for seed in range(args.seeds)]
        for seed, r in enumerate(fixes[name]):
            print(f"fix {name} seed {seed}: restarts {r['restarts']} fixed={r['fixed']} "
                  f"modes {r['modes_captured']}/{r['num_modes']} grad/peak "
                  f"{r['last_grad_over_peak']:.3f}", flush=True)
    return {"induced": induced, "healthy": healthy, "fix": fixes}


def _probes(run) -> str:
    """How many epochs the doctor probed (samples judged), from its ``doctor_probe`` signal."""
    probes = (run.get("signals") or {}).get("doctor_probe")
    return "-" if probes is None else str(sum(1 for p in probes if p))


def _stop(run) -> str:
    """Whether a run was stopped, and the epoch of the backup it left ("none": no backup)."""
    if not run.get("stopped"):
        return "no"
    return f"yes ({'epoch ' + str(run['backup_epoch']) if run.get('backup_epoch') else 'none'})"


def report(result: dict, note: str = "") -> str:
    rows = []
    for name, rec in result.get("induced", {}).items():
        runs = rec["runs"]
        rows.append({"run": name, "expected": " or ".join(rec["expected"]),
                     "seeds passed": f"{sum(r['pass'] for r in runs)}/{len(runs)}",
                     "first epoch / epochs": ", ".join(f"{r['first_epoch']}/{r['epochs']}"
                                                      for r in runs),
                     "other diagnoses": ", ".join(sorted({n for r in runs for n in r['others']}))
                     or "none",
                     "stopped (newest backup)": ", ".join(_stop(r) for r in runs),
                     "probes": ", ".join(_probes(r) for r in runs)})
    for preset, rec in result.get("healthy", {}).items():
        runs = rec["runs"]
        rows.append({"run": f"healthy {preset} ({runs[0]['epochs']} epochs)",
                     "expected": "none",
                     "seeds passed": f"{sum(not r['names'] for r in runs)}/{len(runs)}",
                     "first epoch / epochs": ", ".join(
                         f"{r['diagnoses'][0]['epoch']}/{r['epochs']}" if r["diagnoses"] else "-"
                         for r in runs),
                     "other diagnoses": ", ".join(sorted({n for r in runs for n in r['names']}))
                     or "none",
                     "stopped (newest backup)": ", ".join("yes" if r.get("stopped") else "no"
                                                          for r in runs),
                     "probes": ", ".join(_probes(r) for r in runs)})
    md = table(rows, ["run", "expected", "seeds passed", "first epoch / epochs",
                      "other diagnoses", "stopped (newest backup)", "probes"])
    fix_rows = []
    for name, runs in result.get("fix", {}).items():
        fix_rows.append({"run": f"{name} with --doctor fix",
                         "restarts": ", ".join(str(r["restarts"]) for r in runs),
                         "resumed from epoch (0: scratch)": "; ".join(
                             ",".join(str(f.get("resumed_from", 0)) for f in r["fixes"]) or "-"
                             for r in runs),
                         "remedies": "; ".join(sorted({" ".join(f"{k}={v}" for k, v in
                                                               f["remedy"].items())
                                                      for r in runs for f in r["fixes"]})),
                         "fixed (no diagnosis at the end)": ", ".join(str(r["fixed"])
                                                                      for r in runs),
                         "modes captured": ", ".join(f"{r['modes_captured']}/{r['num_modes']}"
                                                     for r in runs
                                                     if r["modes_captured"] is not None),
                         "last g_grad_norm / peak": ", ".join(f"{r['last_grad_over_peak']:.3f}"
                                                         for r in runs)})
    if fix_rows:
        md += "\n\n" + table(fix_rows, list(fix_rows[0]))
    return md + note


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--healthy", default=",".join(HEALTHY_EPOCHS))
    p.add_argument("--fix", default="", help="cases to run again with --doctor fix "
                                             "(collapse,vanishing)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--healthy-seeds", type=int, default=5)
    p.add_argument("--healthy-seed-list", default=None,
                   help="comma-separated seeds of the healthy runs (instead of 0..N-1)")
    p.add_argument("--full", action="store_true",
                   help="healthy runs at the presets' full recipes (their epochs and data; "
                        "MNIST presets on ../shared/data/mnist), recorded as PRESET:full")
    p.add_argument("--part", default=None, help="write the raw results to PATH only (to run "
                                                "parts in several processes)")
    p.add_argument("--overhead", type=int, default=0, metavar="EPOCHS",
                   help="only time the digits preset for EPOCHS epochs with the doctor on "
                        "and off (run it on a quiet machine); merged into the results")
    p.add_argument("--repeats", type=int, default=5, help="--overhead: timed runs per mode")
    p.add_argument("--quick", action="store_true", help="--overhead: a smoke run, written to "
                                                        "the temporary directory only")
    p.add_argument("--combine", default=None, help="comma-separated --part files: merge them "
                                                   "into benchmarks/results/doctor.* instead of "
                                                   "measuring")
    args = p.parse_args(argv)
    if args.overhead:
        path = os.path.join(RESULTS, "doctor.json")
        result = json.load(open(path)) if os.path.isfile(path) else {}
        got = {**overhead(args.overhead, args.repeats), "cpu": cpu_name(),
               "load_average": os.getloadavg()}
        result.setdefault("overhead", {})[str(args.overhead)] = got  # one record per length
        print("wrote", write("doctor", result, quick=args.quick))
        print(json.dumps(got, indent=2))
        return
    if args.combine:
        result = {"induced": {}, "healthy": {}, "fix": {}}
        for part in args.combine.split(","):
            with open(part) as f:
                got = json.load(f)
            for key in result:
                for name, rec in got.get(key, {}).items():  # parts may split one preset's seeds
                    if key == "healthy" and name in result[key]:
                        runs = {r.get("seed", i): r for i, r in
                                enumerate(result[key][name]["runs"] + rec["runs"])}
                        rec = {"runs": [runs[s] for s in sorted(runs)]}
                    result[key][name] = rec
    else:
        result = measure(args)
        if args.part:
            with open(args.part, "w") as f:
                json.dump(result, f)
            return
    previous = os.path.join(RESULTS, "doctor.json")
    if os.path.isfile(previous) and "overhead" in json.load(open(previous)):
        result["overhead"] = json.load(open(previous))["overhead"]
    result["false_alarms"] = sum(len(r["names"]) for preset, rec in result["healthy"].items()
                                 for r in rec["runs"] if preset != "grid")  # the shortened grid only
    note = (f"\n\nFalse alarms on healthy runs (the shortened grid aside, see the script's "
            f"docstring): {result['false_alarms']}.\n")
    md = report(result, note)
    write("doctor", result)
    with open(os.path.join(RESULTS, "doctor.md"), "w") as f:
        f.write(f"CPU: {cpu_name()} (2 cores shared with other jobs: no timings here).\n\n"
                f"{md}")
    print(md)


if __name__ == "__main__":
    main()
