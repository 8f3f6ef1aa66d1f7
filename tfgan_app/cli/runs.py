"""``tfgan-app sample``, ``evaluate`` and ``export``: commands that read a run directory."""

from __future__ import annotations

import os


def add_evaluate(sub):
    p = sub.add_parser("evaluate", help="evaluate a run directory, write RUN_DIR/eval.json")
    p.add_argument("run_dir")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names (default: the data's default set)")
    p.add_argument("--num-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args) -> int:
    from tfgan_app.evaluation import evaluate_run, format_table
    from tfgan_app.rundir import RunDir

    result = evaluate_run(args.run_dir, metrics=args.metrics, num_samples=args.num_samples,
                          seed=args.seed)
    print(format_table(result))
    print(f"wrote {RunDir(args.run_dir).path(RunDir.EVAL)}")
    return 0


def add_sample(sub):
    p = sub.add_parser("sample", help="a PNG grid of samples from a run or a SavedModel export")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("run_dir", nargs="?", help="run directory (samples from the EMA generator "
                          "when the run kept one, else the raw generator)")
    src.add_argument("--saved-model", default=None, help="an exported SavedModel version dir")
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/samples/sample.png)")
    p.add_argument("-n", "--num", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--labels", default=None,
                   help="comma-separated class labels for a conditional model")
    p.set_defaults(func=_cmd_sample)


def _png_out(path):
    """``--out`` of ``sample``: a PNG file path (not a directory)."""
    if path is not None and os.path.isdir(path):
        raise ValueError(f"--out {path!r} is a directory; expected a PNG file path (e.g. "
                         f"{os.path.join(path, 'samples.png')!r})")
    return path


def _cmd_sample(args) -> int:
    _png_out(args.out)
    try:
        labels = None if args.labels is None else [int(v) for v in args.labels.split(",")]
    except ValueError:
        raise ValueError(f"--labels {args.labels!r}: expected comma-separated integer class "
                         "labels, e.g. 0,1,2") from None
    if labels is not None and len(labels) != args.num:  # repeated to fill -n
        labels = (labels * args.num)[:args.num]
    if args.saved_model:
        from tfgan_app.export import sample_grid_from_saved_model

        out = args.out or "samples.png"
        sample_grid_from_saved_model(args.saved_model, out, n=args.num, seed=args.seed,
                                     labels=labels)
        print(f"wrote {out}")
        return 0
    from tfgan_app.rundir import RunDir

    run = RunDir(args.run_dir)
    sampler = run.sampler()
    samples = sampler.generate(args.num, labels=labels, seed=args.seed)
    out = args.out or run.path(run.SAMPLE_PNG)
    real, spec = None, run.data.get("spec") or {}
    if spec.get("name"):
        from tfgan_app.data.toy import sample_toy

        real, _ = sample_toy(spec["name"], n=args.num, seed=args.seed)
    run.kind.save_picture(samples, out, title=f"{args.num} samples", real=real,
                          modes=spec.get("modes"))
    print(f"wrote {out}")
    return 0


def add_export(sub):
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
    from tfgan_app.rundir import RunDir

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out!r} is a file; expected a directory for the "
                         "versioned exports (OUT/<version>/), new or existing")
    removed = RunDir(args.run_dir).remove_stale_temporaries()
    if removed:
        print(f"removed {len(removed)} temporary file(s) left by killed writes in "
              f"{args.run_dir}")
    path = export_generator(args.run_dir, args.out, version=args.version, format=args.format,
                            use_ema=not args.no_ema)
    print(f"exported {args.format} to {path}")
    if args.verify and args.format == "saved_model":
        verify_export(path, isolated=True)
        print("verified: loads and runs without tfgan_app")
    elif args.verify:
        print("not verified: --verify checks SavedModel exports; run a TFLite export with "
              "tfgan_app.export.tflite_generate")
    return 0
