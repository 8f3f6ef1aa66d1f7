"""The command line against fit(): `tfgan-app train` throughput over `GANModel.fit` alone.

Usage: python benchmarks/cli_overhead.py [--presets a,b] [--seconds 20] [--repeats 3]
       [--max-steps-per-epoch 125] [--quick]

For every preset (or ``--presets``), shortened to a fixed number of steps:

* epochs of ``k = min(the preset's steps per epoch, max(--max-steps-per-epoch, its
  steps_per_execution))`` batches (the preset's pipeline, ``.take(k)``;
  ``info["steps_per_epoch"] = k``, so learning-rate schedules follow), fewer for a slow preset
  (one whose 200 steps would take longer than ``--seconds``: an epoch of at most a quarter of
  it), and ``E`` epochs, chosen once per preset so that ``fit`` takes about ``--seconds``
  (from a short timed ``fit`` in a fresh process), then fixed: ``E x k`` steps, recorded in
  the JSON; a slow preset's budget is raised to ``--min-steps`` steps (default 64; its
  ``seconds`` in the row): photo-superres-x4 at 10 s timed 20 steps, and its runs spread
  from 0.7 to 1.7 steps/s through the CLI and 1.2 to 2.0 in ``fit`` (ratio 0.59); at 96
  steps both were 2.2-2.3 steps/s in every run (ratio 1.01);
* **fit**: a fresh process per repeat (as the CLI's), the same settings (``train.build_gan``:
  jit_compile, steps_per_execution), a warm-up ``fit(epochs=E)`` (tracing; the grid preset's
  annealed instance noise retraces for a new length), then ``fit(epochs=E)`` without
  callbacks, timed alone;
* **CLI**: in the ``tfgan-app train --preset P --epochs E+1`` process, the time from the end
  of its first epoch to the end of the command, minus the same span of the ``--epochs 1``
  process (fresh run directories): the final writes and report are in both and cancel; what
  remains is ``E`` epochs with every bit of the run's bookkeeping at its defaults. The
  start-up (imports, data, building, tracing, the first epoch) is outside both spans: on a
  shared machine it varies by seconds from process to process, which the earlier measure
  (whole process minus whole process, still recorded as
  ``runs_cli_whole_process_steps_per_s``) carried into every ratio;
* ratio = CLI steps/s over fit steps/s (target >= 0.8 for every preset).

Rows run interleaved (fit, CLI E+1, CLI 1, fit, ...) ``--repeats`` times; medians. Start-up
is reported separately: ``tfgan-app --help`` and the time from launching ``--epochs 1`` to its
first training step. A preset whose data is not offline runs on a stand-in of the same shape
(:func:`stand_in`: the MNIST presets on the real MNIST test set, ``cifar10-dcgan`` on 32x32
crops of the sample photos; the row's ``dataset`` says which); one whose data cannot be found
is listed as skipped.
Writes benchmarks/results/cli_overhead.json (``--name NAME``: NAME.json, so a run of some
presets need not replace the table of all of them; ``--merge``: the measured presets' rows
replace theirs in the existing file, each row keeping its own ``seconds`` and date;
``--quick``: a 1-repeat smoke run with small budgets, written to the temporary directory,
never to results/). Timings taken while other
processes use the CPU are noise: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _common import MNIST_IDX, MNIST_IMAGES, cpu_name, read, table, write  # noqa: E402

#: Run inside the CLI process: the preset's pipeline cut to K batches per epoch, and the time
#: of the first training step printed; then exactly `tfgan-app train ...`.
DRIVER = r"""
import os, sys, time
import keras
from tfgan_app import train
K = int(os.environ["CLI_OVERHEAD_STEPS"])
real = train.make_dataset

def short(settings):
    ds, info = real(settings)
    return ds.take(K), {**info, "steps_per_epoch": K}

class First(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0 and not getattr(self, "done", False):
            self.done = True
            print(f"FIRST_STEP {time.time():.6f}", file=sys.stderr, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            print(f"FIRST_EPOCH_END {time.time():.6f}", file=sys.stderr, flush=True)

real_train = train.train

def traced(settings, out, **kw):
    kw["extra_callbacks"] = [*kw.get("extra_callbacks", ()), First()]
    return real_train(settings, out, **kw)

train.make_dataset, train.train = short, traced
from tfgan_app.cli import main
status = main(sys.argv[1:])
print(f"DONE {time.time():.6f}", file=sys.stderr, flush=True)
sys.exit(status)
"""


def stand_in(preset: str, workdir: str) -> str | None:
    """The ``--dataset`` for a preset whose own data is not offline (``None``: its own data).

    The MNIST presets run on the real MNIST test set (:data:`_common.MNIST_IDX`, 10,000
    digits of MNIST's shape). ``cifar10-dcgan`` runs on 2,560 textured 32x32 RGB crops of the
    offline sample photos (:func:`tfgan_app.data.paired.offline_images`), written as PNGs to a
    folder (``folder:``): CIFAR-10's shape, so the model, its step and every bit of the run's
    bookkeeping are the preset's; only the pixels differ. A row records the data it ran on.
    """
    from tfgan_app import presets

    name = str(presets.get(preset)["dataset"])
    if name.split(":")[0] == "mnist" and os.path.isfile(MNIST_IMAGES):
        return MNIST_IDX
    if name.split(":")[0] == "cifar10":
        folder = os.path.join(workdir, "cifar10-stand-in")
        if not os.path.isdir(folder):
            from PIL import Image

            from tfgan_app.data.paired import offline_images

            x = offline_images("photos", image_size=32, num_patches=2560)
            os.makedirs(folder + ".tmp")
            for i, img in enumerate(((x + 1.0) * 127.5).round().clip(0, 255).astype("uint8")):
                Image.fromarray(img).save(os.path.join(folder + ".tmp", f"{i:05d}.png"))
            os.rename(folder + ".tmp", folder)
        return "folder:" + folder
    return None


def steps_per_epoch(preset: str, cap: int, dataset: str | None = None) -> tuple[int, dict]:
    from tfgan_app import train

    settings = train.resolve_settings(preset, dataset=dataset)
    ds, info = train.make_dataset(settings)
    n = int(ds.cardinality())
    if n < 0:
        n = info.get("steps_per_epoch") or int(info["num_examples"]) // int(settings["batch_size"])
    # never below one compiled call (steps_per_execution): a partial call retraces
    cap = max(cap, int(settings.get("steps_per_execution") or 1))
    return max(1, min(int(n), cap)), settings


#: A fresh process timing ``fit`` (no callbacks) of E epochs of K batches after a warm-up
#: call of the same length: the same start as the CLI's process, so neither side carries
#: another preset's models, caches or memory (timed in the benchmark's own long-lived
#: process, after other presets, ``fit`` ran 1.2-2x slower than the CLI's fresh process:
#: ratios above 1).
FIT_DRIVER = r"""
import os, sys, time
import keras
from tfgan_app import train
preset, k, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
settings = train.resolve_settings(preset, dataset=sys.argv[4] if len(sys.argv) > 4 else None)
keras.utils.set_random_seed(int(settings["seed"]))
ds, info = train.make_dataset(settings)
ds = ds.take(k)
gan = train.build_gan(settings, {**info, "steps_per_epoch": k})
# warm-up with the timed call's own epochs: a fit() whose instance noise anneals over the
# call's length (the grid preset) retraces when that length changes (GANModel.fit)
gan.fit(ds, epochs=epochs, verbose=0, shuffle=False)
t0 = time.perf_counter()
gan.fit(ds, epochs=epochs, verbose=0, shuffle=False)
print(f"FIT_SECONDS {time.perf_counter() - t0:.6f}", flush=True)
"""


def fit_fresh(preset: str, k: int, epochs: int, dataset: str | None = None) -> float:
    """Seconds of ``fit(epochs)`` in a fresh process (:data:`FIT_DRIVER`)."""
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", FIT_DRIVER, preset, str(k), str(epochs),
                           *([dataset] if dataset else [])],
                          cwd=REPO, env=env, capture_output=True, text=True)
    got = [float(line.split()[1]) for line in proc.stdout.splitlines()
           if line.startswith("FIT_SECONDS ")]
    if proc.returncode != 0 or not got:
        raise RuntimeError(f"fit of {preset} failed: {proc.stderr[-800:]}")
    return got[0]


def cli_run(preset: str, k: int, epochs: int, workdir: str,
            dataset: str | None = None) -> tuple[float, float, float]:
    """Wall seconds of the whole ``tfgan-app train`` process, launch -> first step, and the
    end of the first epoch -> the end of the command (every later epoch with its bookkeeping,
    then the final writes and report)."""
    out = tempfile.mkdtemp(prefix=f"{preset}-{epochs}-", dir=workdir)
    env = {**os.environ, "CLI_OVERHEAD_STEPS": str(k), "PYTHONPATH": REPO,
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-c", DRIVER, "train", "--preset", preset, "--epochs", str(epochs),
           "--out", out, "--quiet", "--overwrite", *(["--dataset", dataset] if dataset else [])]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"tfgan-app train --preset {preset} failed: {proc.stderr[-800:]}")
    marks = {line.split()[0]: float(line.split()[1]) for line in proc.stderr.splitlines()
             if line.split()[:1] in (["FIRST_STEP"], ["FIRST_EPOCH_END"], ["DONE"])}
    nan = float("nan")
    return (wall, marks["FIRST_STEP"] - t0 if "FIRST_STEP" in marks else nan,
            marks["DONE"] - marks["FIRST_EPOCH_END"]
            if {"DONE", "FIRST_EPOCH_END"} <= set(marks) else nan)


def help_seconds(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tfgan_app.cli", "--help"], cwd=REPO,
                       capture_output=True, env={**os.environ, "PYTHONPATH": REPO}, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(preset, args, workdir) -> dict:
    dataset = stand_in(preset, workdir)
    k, settings = steps_per_epoch(preset, args.max_steps_per_epoch, dataset)
    spx = int(settings.get("steps_per_execution") or 1)
    # the length from a fresh process too: timed in this long-lived process, after other
    # presets, fit ran up to 2.5x slower, which chose 6 epochs for digits-dcgan (38 in a fresh
    # process) and left the CLI difference to start-up noise and one-off costs.
    # First a rough rate from a few steps: a slow preset (photo-superres-x4: about a second a
    # step here) gets epochs of at most a quarter of the timed run, so the CLI's per-epoch
    # bookkeeping still runs at least 4 times and no probe takes minutes
    k0 = min(k, max(10, spx))
    rough = 2 * k0 / fit_fresh(preset, k0, 2, dataset)
    seconds = max(args.seconds, args.min_steps / rough)  # enough steps to average the noise
    if 200 / rough > seconds:
        k = min(k, max(spx, math.ceil(rough * seconds / 4)))
        rate = rough
    else:
        probe = max(1, min(5, math.ceil(200 / k)))
        rate = probe * k / fit_fresh(preset, k, probe, dataset)
    epochs = max(2, round(seconds * rate / k))
    fit_rates, cli_rates, process_rates, startups, firsts = [], [], [], [], []
    for _ in range(args.repeats):  # interleaved
        fit_rates.append(epochs * k / fit_fresh(preset, k, epochs, dataset))
        long_wall, _, long_tail = cli_run(preset, k, epochs + 1, workdir, dataset)
        short_wall, first, short_tail = cli_run(preset, k, 1, workdir, dataset)
        # the E epochs: from the end of the first epoch to the end of the command, the same
        # span of the 1-epoch command (its final writes and report) subtracted; the start-up
        # (imports, data, tracing), noisy on a shared machine, is outside both spans
        # (a difference at or below zero: the machine was busy; the run counts as NaN)
        diff = long_tail - short_tail
        cli_rates.append(epochs * k / diff if diff > 0 else float("nan"))
        process_rates.append(epochs * k / (long_wall - short_wall)
                             if long_wall > short_wall else float("nan"))
        startups.append(short_wall)
        firsts.append(first)
    fit_rate = statistics.median(fit_rates)
    cli_rate = statistics.median([r for r in cli_rates if r == r] or [float("nan")])
    return {"preset": preset, "dataset": dataset or str(settings["dataset"]),
            "seconds": round(seconds, 1), "measured": time.strftime("%Y-%m-%d %H:%M"),
            "steps_per_epoch": k, "epochs": epochs, "steps": epochs * k,
            "batch_size": int(settings["batch_size"]),
            "fit_steps_per_s": fit_rate, "cli_steps_per_s": cli_rate,
            "ratio": cli_rate / fit_rate, "ok": cli_rate / fit_rate >= 0.8,
            "cli_one_epoch_process_s": statistics.median(startups),
            "launch_to_first_step_s": statistics.median(firsts),
            "runs_fit_steps_per_s": [round(r, 1) for r in fit_rates],
            "runs_cli_steps_per_s": [round(r, 1) for r in cli_rates],
            "runs_cli_whole_process_steps_per_s": [round(r, 1) for r in process_rates]}


def _merged(kept: list, rows: list) -> list:
    """``kept`` rows and the new ``rows``, sorted by preset (as a full run lists them)."""
    return sorted([*kept, *rows], key=lambda r: r["preset"])


def _payload(args, rows, skipped, help_s, complete: bool) -> dict:
    return {"seconds": args.seconds, "min_steps": args.min_steps, "repeats": args.repeats,
            "max_steps_per_epoch": args.max_steps_per_epoch, "help_seconds": help_s,
            "rows": rows, "skipped": skipped, "target_ratio": 0.8, "complete": complete,
            "all_ok": complete and bool(rows) and all(r["ok"] for r in rows) and not skipped}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=None, help="comma-separated (default: every preset)")
    p.add_argument("--seconds", type=float, default=20.0,
                   help="fit time per timed run, which fixes each preset's number of steps")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--min-steps", type=int, default=64,
                   help="a slow preset's timed run has at least this many steps (its budget "
                        "raised above --seconds)")
    p.add_argument("--max-steps-per-epoch", type=int, default=125)
    p.add_argument("--name", default="cli_overhead",
                   help="results file benchmarks/results/NAME.json (a run of some presets can "
                        "go to its own file instead of replacing the table of all of them)")
    p.add_argument("--merge", action="store_true",
                   help="replace only the measured presets' rows of an existing NAME.json, "
                        "keeping the others (each row records its --seconds and date)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 1 repeat, 2 s budgets, 10 steps per epoch at most; the "
                        "JSON goes to the temporary directory")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.seconds, args.min_steps = 1, min(args.seconds, 2.0), 4
        args.max_steps_per_epoch = min(args.max_steps_per_epoch, 10)
    from tfgan_app import presets

    names = args.presets.split(",") if args.presets else presets.names()
    unknown = sorted(set(names) - set(presets.names()))
    if unknown:
        p.error(f"unknown presets {unknown}; expected some of {presets.names()}")
    rows, skipped = [], {}
    kept = []
    if args.merge:  # the other presets' rows of the existing table
        kept = [r for r in read(args.name).get("rows", []) if r["preset"] not in names]
    with tempfile.TemporaryDirectory(prefix="cli-overhead-") as workdir:
        for name in names:
            try:
                row = measure(name, args, workdir)
            except (RuntimeError, OSError, ValueError) as e:  # e.g. data not available offline
                skipped[name] = " ".join(str(e).split())[:300]
                print(f"{name}: skipped ({skipped[name][:120]})", flush=True)
                continue
            rows.append(row)
            # written after every preset: a run cut short keeps what it measured
            write(args.name, _payload(args, _merged(kept, rows), skipped, None, complete=False),
                  quick=args.quick)
            print(f"{name}: fit {row['fit_steps_per_s']:.1f} steps/s, CLI "
                  f"{row['cli_steps_per_s']:.1f} steps/s, ratio {row['ratio']:.2f}", flush=True)
    help_s = help_seconds(3)
    print(f"\nCPU: {cpu_name()}; `tfgan-app --help`: {help_s:.2f} s\n")
    print(table(rows, ["preset", "steps", "fit_steps_per_s", "cli_steps_per_s", "ratio",
                       "launch_to_first_step_s"]))
    path = write(args.name, _payload(args, _merged(kept, rows), skipped, help_s, complete=True),
                 quick=args.quick)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
