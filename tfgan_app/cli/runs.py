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
    if result["metrics"]:
        print(format_table(result))
    if result.get("details"):  # a CycleGAN run: both directions and the cycles
        print_cyclegan_report(result["details"])
    print(f"wrote {RunDir(args.run_dir).path(RunDir.EVAL)}")
    return 0


def add_sample(sub):
    p = sub.add_parser("sample", help="a PNG grid of samples from a run or a SavedModel export")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("run_dir", nargs="?", help="run directory (samples from the EMA generator "
                          "when the run kept one, else the raw generator)")
    src.add_argument("--saved-model", default=None, help="an exported SavedModel version dir")
    p.add_argument("--input", default=None, metavar="IMAGE_OR_FOLDER",
                   help="image-to-image runs: translate this PNG/JPEG image, or every one in "
                        "this folder (read as grayscale or RGB to match the model)")
    p.add_argument("--out", default=None,
                   help="PNG path (default RUN_DIR/samples/sample.png); with --input: the PNG "
                        "of one image or the folder of a folder's images (default "
                        "RUN_DIR/samples/translated/)")
    p.add_argument("--direction", default=None, metavar="AtoB|BtoA",
                   help="CycleGAN runs and exports: translate with G (AtoB, the default) or F "
                        "(BtoA)")
    p.add_argument("-n", "--num", type=int, default=None,
                   help="number of samples (default 64; translation: 8 held-out pairs)")
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
    if args.input is None:
        _png_out(args.out)
    if args.num is not None and args.num < 1:
        raise ValueError(f"-n/--num must be a positive integer, got {args.num}")
    if args.direction is not None:
        from tfgan_app.export.contract import direction_name

        args.direction = direction_name(args.direction)
    if args.saved_model and args.input is not None:
        return _translate_saved_model(args)
    if args.run_dir:
        from tfgan_app import kinds
        from tfgan_app.rundir import RunDir

        run = RunDir(args.run_dir)
        if run.kind in (kinds.TRANSLATION, kinds.CYCLEGAN):
            return _sample_translation(args, run)
        if args.direction is not None:
            raise ValueError(f"--direction applies to CycleGAN runs; {args.run_dir!r} is a "
                             f"{run.kind.name} run")
        if args.input is not None:
            raise ValueError(f"--input translates images with an image-to-image run; "
                             f"{args.run_dir!r} is a {run.kind.name} run (it samples from "
                             "noise: use -n and --seed)")
    elif args.input is not None:
        raise ValueError("--input needs a translation run directory or --saved-model")
    args.num = 64 if args.num is None else args.num
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


def _sample_translation(args, run) -> int:
    """``sample`` of an image-to-image run: the user's images (``--input``), else a triptych
    of held-out pairs."""
    from tfgan_app import images
    from tfgan_app.translation import translate_files, triptych

    from tfgan_app import kinds

    if args.labels is not None:
        raise ValueError("--labels applies to class-conditional runs; an image-to-image run "
                         "translates images (--input IMAGE_OR_FOLDER)")
    cycle = run.kind is kinds.CYCLEGAN
    if args.direction is not None and not cycle:
        raise ValueError(f"--direction applies to CycleGAN runs; {run.root!r} is a one-way "
                         f"{run.kind.name} run")
    direction = (args.direction or "a_to_b") if cycle else None
    if args.input is not None:
        translator = run.translator(direction=direction or "a_to_b")
        folder = run.translated_dir(direction)
        out = args.out or (folder if os.path.isdir(args.input) else os.path.join(
            folder, os.path.splitext(os.path.basename(args.input))[0] + ".png"))
        return _print_translated(translate_files(translator, args.input, out), out)
    if cycle:
        return _sample_cycles(args, run)
    translator = run.translator()
    from tfgan_app.data.paired import heldout_pairs

    sources, targets = heldout_pairs(run.data, args.num or 8)
    out = args.out or run.path(run.SAMPLE_PNG)
    grid = triptych(sources, translator(sources), targets)
    images.save_png(grid, out, scale=max(1, min(4, 128 // int(targets.shape[1]))))
    print(f"wrote {out} (source | generated | target for {len(targets)} held-out pairs)")
    return 0


def _sample_cycles(args, run) -> int:
    """``sample`` of a CycleGAN run without ``--input``: both cycles on held-out images."""
    from tfgan_app import images
    from tfgan_app.cyclegan import cycle_grid
    from tfgan_app.data.unpaired import heldout_domains
    from tfgan_app.evaluation.cyclegan import RunTranslators

    held = heldout_domains(run.data, args.num or 8)
    if held is None:
        raise ValueError(f"{run.root!r} trained on {run.data.get('name')!r}, which has no "
                         "held-out images (testA/testB or the offline task) to picture: pass "
                         "--input IMAGE_OR_FOLDER --direction AtoB|BtoA")
    translators = RunTranslators(run)
    out = args.out or run.path(run.SAMPLE_PNG)
    grid = cycle_grid(translators, *held)
    images.save_png(grid, out, scale=max(1, min(4, 128 // int(translators.shape_b[0]))))
    print(f"wrote {out} (a | G(a) | F(G(a)) | b | F(b) | G(F(b)) for {len(held[0])} held-out "
          "images of each domain)")
    return 0


def print_cyclegan_report(rep: dict) -> None:
    """A CycleGAN report (:func:`tfgan_app.evaluation.cyclegan.cyclegan_report`) in a few
    lines: translation against the truth beside the baselines, cycles, labels."""
    if rep.get("heldout") is None:
        print(rep.get("note", "no held-out images"))
        return
    f = lambda v, unit="": "inf" if v is None else f"{v:.3f}{unit}"  # noqa: E731
    print(f"held out: {rep['heldout']}")
    for key, what in (("a_to_b", "G(a) vs T(a)"), ("b_to_a", "F(b) vs a")):
        if key in rep:
            sec = rep[key]
            print(f"{what}: PSNR {f(sec['model']['psnr'], ' dB')} (identity "
                  f"{f(sec['identity']['psnr'])}, histogram {f(sec['histogram']['psnr'])}), "
                  f"L1 {f(sec['model']['l1'])} (identity {f(sec['identity']['l1'])}, "
                  f"histogram {f(sec['histogram']['l1'])})")
    c = rep["cycle"]
    print(f"cycle PSNR: F(G(a)) {f(c['psnr_a'], ' dB')}, G(F(b)) {f(c['psnr_b'], ' dB')}")
    if "labels" in rep:
        lab = rep["labels"]
        print(f"labels kept: G(a) {100 * lab['g_of_a_as_a_label']:.1f}%, F(b) "
              f"{100 * lab['f_of_b_as_b_label']:.1f}% (classifiers on real images: "
              f"{100 * lab['real_a']:.1f}%, {100 * lab['real_b']:.1f}%)")


def _print_translated(summary: dict, out: str) -> int:
    n = len(summary["written"])
    what = f"{n} images into {out}" if n > 1 or os.path.isdir(out) else summary["written"][0]
    print(f"translated {what} ({'x'.join(map(str, summary['from']))} -> "
          f"{'x'.join(map(str, summary['to']))})")
    channels = summary["from"][-1]
    if summary["converted"]:
        print(f"converted {summary['converted']} image(s) to "
              f"{'grayscale' if channels == 1 else 'RGB'} for the model's {channels}-channel "
              "input")
    if summary["replaced"]:
        print(f"replaced {summary['replaced']} existing file(s)")
    return 0


def _translate_saved_model(args) -> int:
    """``sample --saved-model EXPORT --input ...``: through the export's loaded-model API."""
    from tfgan_app.export.loaded import load_translator
    from tfgan_app.translation import translate_files

    out = args.out or ("translated" if os.path.isdir(args.input) else
                       os.path.splitext(os.path.basename(args.input))[0] + "_translated.png")
    return _print_translated(translate_files(load_translator(args.saved_model, args.direction),
                                             args.input, out), out)


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
