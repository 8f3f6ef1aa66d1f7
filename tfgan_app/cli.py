"""The ``tfgan-app`` command line: ``train``, ``presets`` (and more subcommands as added).

``tfgan-app train`` with no arguments trains the default preset into ``runs/<preset>``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _add_train(sub):
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from tfgan_app import train
    from tfgan_app.utils import read_json

    config = None
    if args.config:
        config = read_json(args.config)
        if not isinstance(config, dict):
            raise ValueError(f"{args.config} must hold a JSON object of settings")
        config = config.get("settings", config)
    settings = train.resolve_settings(
        args.preset, config=config, overrides=args.overrides, dataset=args.dataset,
        epochs=args.epochs, batch_size=args.batch_size, loss=args.loss, d_steps=args.d_steps,
        seed=args.seed, strategy=args.strategy, mixed_precision=args.mixed_precision)
    out = args.out or os.path.join("runs", settings["preset"])
    print(f"training preset {settings['preset']!r} into {out}", flush=True)
    result = train.train(settings, out, verbose=0 if args.quiet else 1, resume=args.resume)
    if result["report"] and settings.get("report") == "gaussian":
        train.print_gaussian_report(result["report"])
    elif result["report"] and settings.get("report") == "mode_coverage":
        rep = result["report"]
        print(f"modes captured: {rep['modes_captured']}/{rep['num_modes']}, high quality "
              f"(within 3 std of a mode): {100 * rep['high_quality']:.1f}% of "
              f"{rep['num_samples']} samples")
    h = result["history"]
    if h.get("d_loss"):
        print(f"final epoch: d_loss={h['d_loss'][-1]:.4f} g_loss={h['g_loss'][-1]:.4f} "
              f"D(real)={h['d_real'][-1]:.3f} D(generated)={h['d_fake'][-1]:.3f}")
    if settings.get("strategy") == "multiworker":
        who = ("chief: wrote the run directory" if result["is_chief"]
               else "not the chief: wrote to a temporary directory, now removed")
        print(f"{result['task']} ({who}); generator weights sha1 {result['fingerprint']}")
    if result["is_chief"]:
        print(f"run directory: {result['out_dir']}")
    return 0


def _add_presets(sub):
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


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="evaluate a run directory, write RUN_DIR/eval.json")
    p.add_argument("run_dir")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names (default: the data's default set)")
    p.add_argument("--num-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args) -> int:
    from tfgan_app.evaluation import evaluate_run, format_table

    result = evaluate_run(args.run_dir, metrics=args.metrics, num_samples=args.num_samples,
                          seed=args.seed)
    print(format_table(result))
    print(f"wrote {os.path.join(args.run_dir, 'eval.json')}")
    return 0


def _add_sample(sub):
    p = sub.add_parser("sample", help="a PNG grid of samples from a run or a SavedModel export")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("run_dir", nargs="?", help="run directory (uses generator.keras)")
    src.add_argument("--saved-model", default=None, help="an exported SavedModel version dir")
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/samples/sample.png)")
    p.add_argument("-n", "--num", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--labels", default=None,
                   help="comma-separated class labels for a conditional model")
    p.set_defaults(func=_cmd_sample)


def _cmd_sample(args) -> int:
    import numpy as np

    labels = None if args.labels is None else [int(v) for v in args.labels.split(",")]
    if args.saved_model:
        from tfgan_app.export import sample_grid_from_saved_model

        out = args.out or "samples.png"
        sample_grid_from_saved_model(args.saved_model, out, n=args.num, seed=args.seed,
                                     labels=labels)
        print(f"wrote {out}")
        return 0
    from tfgan_app import callbacks as cb
    from tfgan_app.run import load_run

    gan = load_run(args.run_dir)
    if labels is not None and len(labels) != args.num:
        labels = (labels * args.num)[:args.num]
    samples = gan.generate(args.num, labels=labels, seed=args.seed)
    out = args.out or os.path.join(args.run_dir, "samples", "sample.png")
    if samples.ndim == 4:
        cb.save_png(cb.image_grid(samples), out, scale=4)
    else:
        real = None
        spec = (gan.run_config.get("data") or {}).get("spec") or {}
        if spec.get("name"):
            from tfgan_app.data.toy import sample_toy

            real, _ = sample_toy(spec["name"], n=args.num, seed=args.seed)
        cb.plot_scatter(real if real is not None else np.zeros((0, 2)), samples, out,
                        f"{args.num} samples", spec.get("modes"))
    print(f"wrote {out}")
    return 0


def _add_export(sub):
    p = sub.add_parser("export", help="export a run's generator for TF Serving (or TFLite)")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True,
                   help="base directory; the export goes to OUT/<version>/ (TF Serving layout)")
    p.add_argument("--version", type=int, default=None, help="default: the next integer")
    p.add_argument("--format", choices=["saved_model", "tflite"], default="saved_model")
    p.add_argument("--no-ema", action="store_true",
                   help="export the raw generator even when the run kept an EMA copy")
    p.add_argument("--verify", action="store_true",
                   help="reload the export in a fresh process without tfgan_app and check it")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args) -> int:
    from tfgan_app.export import export_generator, verify_export

    path = export_generator(args.run_dir, args.out, version=args.version, format=args.format,
                            use_ema=not args.no_ema)
    print(f"exported {args.format} to {path}")
    if args.verify and args.format == "saved_model":
        verify_export(path, isolated=True)
        print("verified: loads and runs without tfgan_app")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfgan-app", description="Train, sample, evaluate and export GANs (Keras 3 + TF-GAN)")
    sub = parser.add_subparsers(dest="command", required=True)
    from tfgan_app.tuning import add_tune_parser
    _add_train(sub)
    _add_presets(sub)
    _add_sample(sub)
    _add_evaluate(sub)
    _add_export(sub)
    add_tune_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``tfgan-app`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"tfgan-app {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
