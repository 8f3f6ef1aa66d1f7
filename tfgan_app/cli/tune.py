"""``tfgan-app tune``: a keras-tuner search over a preset (see :mod:`tfgan_app.tuning`)."""

from __future__ import annotations

import os
import sys

from tfgan_app.tuning import DEFAULT_SPACE, OBJECTIVES, TUNERS, format_trials, search


def add_tune_parser(subparsers):
    """Add the ``tune`` subcommand to ``tfgan-app``'s argparse ``subparsers``."""
    p = subparsers.add_parser(
        "tune", help="hyperparameter search with keras-tuner (writes best.json for train)",
        description="Search a preset's hyperparameters with keras-tuner; every trial is scored "
                    "on held-out data (see tfgan_app.tuning). Prints a table of trials and "
                    "writes OUT/best.json, which `tfgan-app train --preset NAME --config "
                    "OUT/best.json` accepts.")
    p.add_argument("--preset", required=True, help="preset name (see `tfgan-app presets`)")
    p.add_argument("--tuner", choices=TUNERS, default="random")
    p.add_argument("--max-trials", type=int, default=10,
                   help="total number of trials (with --resume: including earlier ones)")
    p.add_argument("--out", default=None, help="search directory (default tuning/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out")
    p.add_argument("--overwrite", action="store_true", help="replace the search in --out")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per trial (Hyperband: max epochs); default: the preset's")
    p.add_argument("--objective", default=None,
                   help=f"one of {', '.join(OBJECTIVES)} (default: frechet for toy sets, fid "
                        "for images)")
    p.add_argument("--tune", default=None, metavar="NAMES",
                   help=f"comma-separated default hyperparameters to tune (default: all of "
                        f"{', '.join(DEFAULT_SPACE)} that apply)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override a setting for every trial")
    p.add_argument("--tuner-seed", type=int, default=0, help="the oracle's seed")
    p.add_argument("--num-samples", type=int, default=None,
                   help="generated samples per evaluation")
    p.add_argument("--max-consecutive-failures", type=int, default=3,
                   help="stop after this many failed trials in a row")
    p.add_argument("--distributed", choices=["chief", "worker"], default=None,
                   help="keras-tuner chief/worker mode (start the chief first)")
    p.add_argument("--oracle-address", default=None, metavar="HOST:PORT",
                   help="where the chief serves the oracle (with --distributed)")
    p.add_argument("--tuner-id", default=None,
                   help="worker id, e.g. tuner0, tuner1 (unique per worker)")
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1],
                   help="keras-tuner's per-trial display (default 1)")
    p.set_defaults(func=_cmd_tune)
    return p


def _cmd_tune(args) -> int:
    if args.distributed and not args.oracle_address:
        raise ValueError("--distributed needs --oracle-address HOST:PORT")
    if args.tuner_id and not args.distributed:
        raise ValueError("--tuner-id is only used with --distributed")
    result = search(args.preset, tuner=args.tuner, max_trials=args.max_trials, out=args.out,
                    resume=args.resume, overwrite=args.overwrite, epochs=args.epochs,
                    overrides=args.overrides,
                    objective=args.objective, tune=args.tune, seed=args.tuner_seed,
                    distributed=args.distributed, oracle_address=args.oracle_address,
                    tuner_id=args.tuner_id, num_samples=args.num_samples,
                    max_consecutive_failed_trials=args.max_consecutive_failures,
                    verbose=args.verbose)
    objective = result["hypermodel"].objective
    best = result["best"]
    rows = result["trials"]
    print()
    if result["role"] == "worker":
        print(f"worker {args.tuner_id or 'tuner0'} ran {len(rows)} trial(s); results are kept "
              f"by the chief in {result['out_dir']}")
        print(format_trials(rows, objective.name))
        return 0
    print(f"{len(rows)} trial(s) in {result['out_dir']} "
          f"(objective {objective.name}, {objective.direction})")
    print(format_trials(rows, objective.name, best["trial_id"] if best else None))
    if best is None:
        print("no trial completed with a finite objective; no best.json written",
              file=sys.stderr)
        return 1
    print(f"best: trial {best['trial_id']} {objective.name}={best['value']:.6g}")
    print(f"wrote {os.path.join(result['out_dir'], 'best.json')}; retrain with:")
    print(f"  {best['command']}")
    return 0
