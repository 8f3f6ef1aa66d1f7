"""``tfgan-app train`` and ``tfgan-app presets``."""

from __future__ import annotations

import json
import os
import sys


def add_train(sub):
    p = sub.add_parser("train", help="train a preset into a run directory")
    p.add_argument("--preset", default=None, help="preset name (see `tfgan-app presets`)")
    p.add_argument("--dataset", default=None, help="override the preset's dataset")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--loss", default=None, help="loss pair name, e.g. modified, wasserstein")
    p.add_argument("--d-steps", type=int, default=None, help="discriminator steps per G step")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="run directory (default runs/<preset>)")
    p.add_argument("--config", default=None, help="JSON file of settings (e.g. tuned best.json)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override any setting; dotted keys nest")
    p.add_argument("--strategy", default=None,
                   help="tf.distribute strategy: default, onedevice, mirrored, multiworker "
                        "(TF_CONFIG), tpu or auto; --batch-size stays the global batch size")
    p.add_argument("--mixed-precision", default=None, metavar="POLICY",
                   help="mixed_float16 (GPUs), mixed_bfloat16 (CPUs, TPUs), auto or none")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="ignore (and delete) OUT/backup left by a killed run instead of "
                        "continuing from it")
    p.add_argument("--overwrite", action="store_true",
                   help="train afresh into an OUT that holds a run (finished or not): "
                        "removes what the earlier run wrote there")
    p.add_argument("--resume-more", action="store_true",
                   help="continue a finished run in OUT to --epochs N in total (the other "
                        "settings must be the same); without it a finished run is left as "
                        "it is")
    p.add_argument("--doctor", choices=("on", "off", "fix"), default=None,
                   help="the training doctor: on (default) names failures and remedies, fix "
                        "also restarts with the remedy, off")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from tfgan_app import train
    from tfgan_app.utils import read_json

    if args.resume_more and args.epochs is None:
        raise ValueError("--resume-more needs --epochs N: the total number of epochs to "
                         "continue the finished run to")
    if args.resume_more and not args.resume:
        raise ValueError("--resume-more and --no-resume exclude each other")
    config = None
    if args.config:
        try:
            config = read_json(args.config)
        except (FileNotFoundError, ValueError) as e:
            raise ValueError(f"--config: {e} (expected a JSON file of settings)") from None
        if not isinstance(config, dict):
            raise ValueError(f"--config {args.config} must hold a JSON object of settings")
        config = config.get("settings", config)
    settings = train.resolve_settings(
        args.preset, config=config, overrides=args.overrides, dataset=args.dataset,
        epochs=args.epochs, batch_size=args.batch_size, loss=args.loss, d_steps=args.d_steps,
        seed=args.seed, strategy=args.strategy, mixed_precision=args.mixed_precision,
        doctor=args.doctor)
    out = args.out or os.path.join("runs", settings["preset"])
    print(f"training preset {settings['preset']!r} into {out}", flush=True)
    run_train = train.train
    if settings.get("doctor") == "fix":  # the closed loop (README, "Training doctor")
        from tfgan_app.doctor.fix import train as run_train
    result = run_train(settings, out, verbose=0 if args.quiet else 1, resume=args.resume,
                       overwrite=args.overwrite, resume_more=args.resume_more)
    if result["report"] and settings.get("report") == "gaussian":
        train.print_gaussian_report(result["report"])
    elif result["report"] and settings.get("report") == "mode_coverage":
        rep = result["report"]
        print(f"modes captured: {rep['modes_captured']}/{rep['num_modes']}, high quality "
              f"(within 3 std of a mode): {100 * rep['high_quality']:.1f}% of "
              f"{rep['num_samples']} samples")
    elif result["report"] and settings.get("report") == "translation":
        rep = result["report"]
        print(f"{rep['num_pairs']} held-out pairs: " + ", ".join(
            f"{k.upper()} {rep['model'][k]:.3f} (input baseline {rep['baseline'][k]:.3f})"
            for k in ("psnr", "ssim", "l1")))
    elif result["report"] and settings.get("report") == "cyclegan":
        from tfgan_app.cli.runs import print_cyclegan_report

        print_cyclegan_report(result["report"])
    h = result["history"]
    if h.get("d_loss"):
        more = (f"cycle={h['cycle'][-1]:.4f} identity={h['identity'][-1]:.4f}" if "cycle" in h
                else f"D(real)={h['d_real'][-1]:.3f} D(generated)={h['d_fake'][-1]:.3f}")
        print(f"final epoch: d_loss={h['d_loss'][-1]:.4f} g_loss={h['g_loss'][-1]:.4f} {more}")
    if settings.get("strategy") == "multiworker":
        who = ("chief: wrote the run directory" if result["is_chief"]
               else "not the chief: wrote to a temporary directory, now removed")
        print(f"{result['task']} ({who}); generator weights sha1 {result['fingerprint']}")
    if result["is_chief"]:
        print(f"run directory: {result['out_dir']}")
    for warning in result["warnings"]:  # repeated: the progress bars may have hidden it
        print(warning, file=sys.stderr)
    return 0


def add_presets(sub):
    p = sub.add_parser("presets", help="list the training presets")
    p.add_argument("--json", action="store_true", help="print full settings as JSON")
    p.set_defaults(func=_cmd_presets)


def _cmd_presets(args) -> int:
    from tfgan_app import presets

    if args.json:
        print(json.dumps({n: presets.get(n) for n in presets.names()}, indent=2))
        return 0
    width = max(len(n) for n in presets.names())
    for name, desc in presets.describe():
        mark = " (default)" if name == presets.DEFAULT_PRESET else ""
        print(f"{name:<{width}}  {desc}{mark}")
    return 0
