"""A PyTorch peer, side by side: the d2l two-Gaussian GAN and the TF DCGAN tutorial's networks.

Usage: python benchmarks/vs_pytorch.py [--repeats 5] [--d2l-steps 5000] [--dcgan-steps 20]
       [--variants] [--default-run] [--no-d2l] [--name NAME] [--quick]

PyTorch (CPU) is needed only here, never by the package: ``pip install "torch==2.13.0+cpu"``
(or ``torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu``).

1. **d2l** (Dive into Deep Learning, "Generative Adversarial Networks"): 1,000 points
   ``X A + b``, batch 8, G ``Linear(2, 2)``, D ``Linear(2,5)-Tanh-Linear(5,3)-Tanh-Linear(3,1)``,
   ``BCEWithLogitsLoss(reduction="sum")``, Adam (D 0.05, G 0.005), ``update_D`` then
   ``update_G`` with the same ``Z``, the losses accumulated as floats per step -- the chapter's
   loop as written (its per-epoch plotting left out). Against ``GANModel.fit`` of the
   ``d2l-gaussian`` preset and against the whole ``tfgan-app train --preset d2l-gaussian``
   process (``--epochs E+1`` minus ``--epochs 1``, as ``benchmarks/cli_overhead.py``; ``E``
   epochs of 125 steps, at least ``--cli-steps``, 150,000 by default, ~20 s). Steps/s.
2. **DCGAN**: the TensorFlow DCGAN tutorial's 28x28 networks (``variant="tutorial"``) and the
   same networks in PyTorch (BatchNorm eps 1e-3 / momentum 0.01, LeakyReLU 0.3, "same"
   padding), batch 256, Adam(1e-4, eps 1e-7) for both, the non-saturating loss, the same
   sequential algorithm (D update on real and G(z), then G update with fresh noise), MNIST
   t10k from ``../shared/data/mnist`` (random images when absent). Images/s.
3. **Compute**: FLOPs per DCGAN step counted from the layer shapes (forward: dense ``2 in
   out``, conv ``2 Ho Wo Co k^2 Ci``, transposed conv ``2 Hi Wi Ci k^2 Co``; a backward pass
   counted as twice its forward), achieved GFLOP/s of ``fit``, the same run's matmul roof
   (median GFLOP/s of a 2048x2048 float32 ``tf.linalg.matmul``) and the CPU's vector width
   (``/proc/cpuinfo`` flags); the fraction.
4. **The main job** (``--default-run``): the README's ``tfgan-app train`` (the default preset,
   whole process, launch to exit) timed once after the DCGAN rows, recorded beside the same
   run's PyTorch DCGAN images/s: a reader scales the wall time by the ratio of that PyTorch
   rate to their own machine's.

Every comparison runs interleaved (A, B, A, B, ...) ``--repeats`` times; medians and ratios.
``--variants`` adds ``fit`` rows with ``jit_compile=True`` and ``steps_per_execution=4`` and a
PyTorch channels-last row, side by side (thread counts and oneDNN switches are process-wide:
run the script under ``TF_ENABLE_ONEDNN_OPTS=0`` or ``OMP_NUM_THREADS`` to compare those).
Writes benchmarks/results/vs_pytorch.json (``--name NAME``: NAME.json; ``--quick``: tiny smoke
settings, JSON to the temporary directory, never to results/). Timings taken while other
processes use the CPU are noise: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import cpu_name, table, write  # noqa: E402


def interleaved(fns: dict, repeats: int) -> dict:
    """``{name: (median, runs)}`` of ``fns[name]() -> rate``, run in turn ``repeats`` times."""
    runs = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            runs[name].append(fn())
    return {name: (statistics.median(r), r) for name, r in runs.items()}


# ------------------------------------------------------------------------------ d2l

def torch_d2l(steps: int):
    """The d2l chapter's loop; ``run() -> steps/s`` over ``steps`` steps (whole epochs of the
    shuffled DataLoader, the last one cut)."""
    import torch
    from torch import nn
    from torch.utils import data as tdata

    torch.manual_seed(0)
    X = torch.normal(0.0, 1, (1000, 2))
    A = torch.tensor([[1, 2], [-0.1, 0.5]])
    b = torch.tensor([1, 2])
    data = torch.matmul(X, A) + b
    data_iter = tdata.DataLoader(tdata.TensorDataset(data), batch_size=8, shuffle=True)
    net_G = nn.Sequential(nn.Linear(2, 2))
    net_D = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 3), nn.Tanh(),
                          nn.Linear(3, 1))
    loss = nn.BCEWithLogitsLoss(reduction="sum")
    for w in net_D.parameters():
        nn.init.normal_(w, 0, 0.02)
    for w in net_G.parameters():
        nn.init.normal_(w, 0, 0.02)
    trainer_D = torch.optim.Adam(net_D.parameters(), lr=0.05)
    trainer_G = torch.optim.Adam(net_G.parameters(), lr=0.005)
    latent_dim = 2

    def update_D(X, Z):
        batch_size = X.shape[0]
        ones = torch.ones((batch_size,), device=X.device)
        zeros = torch.zeros((batch_size,), device=X.device)
        trainer_D.zero_grad()
        real_Y = net_D(X)
        fake_X = net_G(Z)
        fake_Y = net_D(fake_X.detach())
        loss_D = (loss(real_Y, ones.reshape(real_Y.shape)) +
                  loss(fake_Y, zeros.reshape(fake_Y.shape))) / 2
        loss_D.backward()
        trainer_D.step()
        return loss_D

    def update_G(Z):
        batch_size = Z.shape[0]
        ones = torch.ones((batch_size,), device=Z.device)
        trainer_G.zero_grad()
        fake_X = net_G(Z)
        fake_Y = net_D(fake_X)
        loss_G = loss(fake_Y, ones.reshape(fake_Y.shape))
        loss_G.backward()
        trainer_G.step()
        return loss_G

    def loop(steps):
        metric = [0.0, 0.0, 0]  # d2l.Accumulator(3)
        t0, done = time.perf_counter(), 0
        while done < steps:
            for (X,) in data_iter:
                batch_size = X.shape[0]
                Z = torch.normal(0, 1, size=(batch_size, latent_dim))
                ld, lg = update_D(X, Z), update_G(Z)
                metric = [metric[0] + float(ld), metric[1] + float(lg), metric[2] + batch_size]
                done += 1
                if done >= steps:
                    break
        return steps / (time.perf_counter() - t0)

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    loop(min(steps, 250))  # warm-up
    return lambda: loop(steps)


def fit_d2l(steps: int):
    """``GANModel.fit`` of the d2l-gaussian preset (its XLA and steps_per_execution); whole
    epochs of 125 steps, at least ``steps``."""
    import keras

    from tfgan_app import train

    settings = train.resolve_settings("d2l-gaussian")
    keras.utils.set_random_seed(0)
    ds, info = train.make_dataset(settings)
    gan = train.build_gan(settings, info)
    per_epoch = int(info["num_examples"]) // int(settings["batch_size"])
    epochs = max(1, -(-steps // per_epoch))
    gan.fit(ds, epochs=1, verbose=0, shuffle=False)  # tracing, compilation

    def run():
        t0 = time.perf_counter()
        gan.fit(ds, epochs=epochs, verbose=0, shuffle=False)
        return epochs * per_epoch / (time.perf_counter() - t0)

    return run, epochs, per_epoch


def cli_d2l(epochs: int, per_epoch: int, workdir: str):
    from cli_overhead import cli_run

    def run():
        long_wall, _ = cli_run("d2l-gaussian", per_epoch, epochs + 1, workdir)
        short_wall, _ = cli_run("d2l-gaussian", per_epoch, 1, workdir)
        diff = long_wall - short_wall
        return epochs * per_epoch / diff if diff > 0 else float("nan")

    return run


def default_run(workdir: str) -> dict:
    """The README's main job, timed whole: ``tfgan-app train`` with no options but ``--out``
    (the default preset, its progress bar and every bit of its bookkeeping), launch to exit."""
    import subprocess

    from tfgan_app import presets

    out = os.path.join(workdir, "default-run")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "tfgan_app.cli", "train", "--out", out],
                          cwd=os.path.dirname(HERE), capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)})
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"tfgan-app train failed: {proc.stderr[-800:]}")
    settings = presets.get(presets.DEFAULT_PRESET)
    return {"preset": presets.DEFAULT_PRESET, "epochs": int(settings["epochs"]),
            "wall_s": wall}


# ---------------------------------------------------------------------------- DCGAN

def torch_dcgan(images, batch: int, latent: int, steps: int, channels_last: bool = False):
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Reshape(nn.Module):
        def forward(self, x):
            return x.view(-1, 256, 7, 7)

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    G = nn.Sequential(
        nn.Linear(latent, 7 * 7 * 256, bias=False), nn.BatchNorm1d(7 * 7 * 256, eps=1e-3,
                                                                   momentum=0.01),
        nn.LeakyReLU(0.3), Reshape(),
        nn.ConvTranspose2d(256, 128, 5, 1, padding=2, bias=False), bn(128), nn.LeakyReLU(0.3),
        nn.ConvTranspose2d(128, 64, 5, 2, padding=2, output_padding=1, bias=False), bn(64),
        nn.LeakyReLU(0.3),
        nn.ConvTranspose2d(64, 1, 5, 2, padding=2, output_padding=1, bias=False), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(1, 64, 5, 2, padding=2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
        nn.Conv2d(64, 128, 5, 2, padding=2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, eps=1e-7)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, eps=1e-7)
    bce = nn.BCEWithLogitsLoss()
    real_all = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    state = {"i": 0}

    def step():
        i = state["i"] % (len(real_all) // batch)
        state["i"] += 1
        real = real_all[i * batch:(i + 1) * batch].contiguous(memory_format=fmt)
        with torch.no_grad():
            fake = G(torch.randn(batch, latent))
        opt_d.zero_grad(set_to_none=True)
        d_loss = bce(D(real), ones) + bce(D(fake), zeros)
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        g_loss = bce(D(G(torch.randn(batch, latent))), ones)
        g_loss.backward()
        opt_g.step()
        return d_loss, g_loss

    def run():
        t0 = time.perf_counter()
        for _ in range(steps):
            d_loss, _ = step()
        float(d_loss)
        return steps * batch / (time.perf_counter() - t0)

    step()  # warm-up
    return run


def fit_dcgan(ds, batch: int, latent: int, steps: int, jit: bool = False, spe: int = 1):
    import keras

    import tfgan_app as tg
    from dcgan_throughput import models

    g, d = models(latent)
    gan = tg.GANModel(g, d, latent_dim=latent, seed=0)
    gan.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4),
                loss=tg.losses.get("modified", label_smoothing=0.0), jit_compile=jit,
                steps_per_execution=spe)
    per = max(spe, steps - steps % spe)
    gan.fit(ds, steps_per_epoch=spe, epochs=1, verbose=0)  # tracing, compilation

    def run():
        t0 = time.perf_counter()
        gan.fit(ds, steps_per_epoch=per, epochs=1, verbose=0)
        return per * batch / (time.perf_counter() - t0)

    return run, g, d


def forward_flops(model) -> float:
    """FLOPs of one example's forward pass through the dense and convolution layers."""
    import keras

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            _, hi, wi, ci = layer.input.shape
            k = layer.kernel.shape[0] * layer.kernel.shape[1]
            total += 2 * hi * wi * ci * k * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, ho, wo, co = layer.output.shape
            total += 2 * ho * wo * co * layer.kernel.shape[0] * layer.kernel.shape[1] * \
                layer.kernel.shape[2]
    return total


def matmul_roof(n: int = 2048, repeats: int = 5) -> float:
    import tensorflow as tf

    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    tf.linalg.matmul(a, b).numpy()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        rates.append(2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def vector_width() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((ln.split(":", 1)[1].split() for ln in fh if ln.startswith("flags")), [])
    except OSError:
        return "unknown"
    for flag, width in (("avx512f", "512-bit (AVX-512)"), ("avx2", "256-bit (AVX2)"),
                        ("avx", "256-bit (AVX)"), ("sse2", "128-bit (SSE2)")):
        if flag in flags:
            return width + (", FMA" if "fma" in flags else "")
    return "unknown"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--d2l-steps", type=int, default=5000)
    p.add_argument("--cli-steps", type=int, default=150_000,
                   help="d2l steps of the tfgan-app train row: whole epochs of 125, at least "
                        "this many; long enough that the two processes' start-up noise (a "
                        "second or two) is small beside their difference")
    p.add_argument("--dcgan-steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--variants", action="store_true",
                   help="also fit with jit_compile=True and steps_per_execution=4, and "
                        "PyTorch channels-last")
    p.add_argument("--no-cli", action="store_true", help="skip the tfgan-app train rows")
    p.add_argument("--default-run", action="store_true",
                   help="also time the default preset's whole `tfgan-app train` once, after "
                        "the DCGAN rows, beside the same run's PyTorch DCGAN images/s (a "
                        "reader scales it to their machine by the ratio of PyTorch rates)")
    p.add_argument("--no-d2l", action="store_true", help="skip the d2l comparison")
    p.add_argument("--name", default="vs_pytorch",
                   help="results file benchmarks/results/NAME.json")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 repeat, tiny step "
                   "counts, batch 32; the JSON goes to the temporary directory")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.d2l_steps, args.dcgan_steps, args.batch_size = 1, 250, 2, 32
        args.cli_steps = 250
    try:
        import torch
    except ImportError:
        p.error('PyTorch is not installed: pip install "torch==2.13.0+cpu" (the benchmark '
                "only; the package does not depend on it)")

    from dcgan_throughput import dataset

    out = {"repeats": args.repeats, "torch": torch.__version__,
           "torch_threads": torch.get_num_threads()}
    # --- d2l
    if not args.no_d2l:
        t_run = torch_d2l(args.d2l_steps)
        f_run, epochs, per_epoch = fit_d2l(args.d2l_steps)
        fns = {"pytorch (d2l loop)": t_run, "GANModel.fit": f_run}
        with tempfile.TemporaryDirectory(prefix="vs-pytorch-") as workdir:
            if not args.no_cli:
                fns["tfgan-app train"] = cli_d2l(-(-args.cli_steps // per_epoch), per_epoch,
                                                 workdir)
            res = interleaved(fns, args.repeats)
        base = res["pytorch (d2l loop)"][0]
        d2l_rows = [{"what": name, "steps_per_s": rate, "vs_pytorch": rate / base,
                     "runs": [round(r, 1) for r in runs]} for name, (rate, runs) in res.items()]
        out["d2l"] = {"steps": args.d2l_steps, "fit_epochs": epochs,
                      "cli_epochs": None if args.no_cli else -(-args.cli_steps // per_epoch),
                      "rows": d2l_rows,
                      "targets": {"GANModel.fit": 5.0, "tfgan-app train": 3.0}}
        print(f"d2l two-Gaussian GAN, batch 8 (CPU: {cpu_name()})\n")
        print(table(d2l_rows, ["what", "steps_per_s", "vs_pytorch"]))

    # --- DCGAN
    batch, latent = args.batch_size, args.latent_dim
    ds, source = dataset(batch)
    ds = ds.repeat()
    images = next(iter(ds.unbatch().batch(10_000 // batch * batch)))
    images = images[0] if isinstance(images, tuple) else images
    images = images.numpy()
    fit_run, g, d = fit_dcgan(ds, batch, latent, args.dcgan_steps)
    fns = {"pytorch": torch_dcgan(images, batch, latent, args.dcgan_steps),
           "GANModel.fit": fit_run}
    if args.variants:
        fns["GANModel.fit jit_compile=True"] = fit_dcgan(ds, batch, latent, args.dcgan_steps,
                                                         jit=True)[0]
        fns["GANModel.fit steps_per_execution=4"] = fit_dcgan(ds, batch, latent,
                                                              args.dcgan_steps, spe=4)[0]
        fns["pytorch channels_last"] = torch_dcgan(images, batch, latent, args.dcgan_steps,
                                                   channels_last=True)
    res = interleaved(fns, args.repeats)
    g_f, d_f = forward_flops(g), forward_flops(d)
    per_image = 4 * g_f + 9 * d_f  # D step: G fwd + 3x D on real and fake; G step: 3x G, 3x D
    roof = matmul_roof()
    base = res["pytorch"][0]
    dc_rows = []
    for name, (rate, runs) in res.items():
        gflops = rate * per_image / 1e9
        dc_rows.append({"what": name, "images_per_s": rate, "vs_pytorch": rate / base,
                        "gflop_per_s": gflops, "fraction_of_matmul_roof": gflops / roof,
                        "runs": [round(r, 1) for r in runs]})
    out["dcgan"] = {"data": source, "batch_size": batch, "steps": args.dcgan_steps,
                    "g_forward_mflop_per_image": g_f / 1e6,
                    "d_forward_mflop_per_image": d_f / 1e6,
                    "step_gflop_per_real_image": per_image / 1e9, "rows": dc_rows,
                    "matmul_roof_gflop_per_s": roof, "vector_width": vector_width(),
                    "targets": {"GANModel.fit": 1.3}}
    print(f"\nDCGAN (TF tutorial networks), batch {batch}, data: {source}; G forward "
          f"{g_f / 1e6:.1f} MFLOP, D forward {d_f / 1e6:.1f} MFLOP per image; "
          f"{per_image / 1e9:.3f} GFLOP per real image per step; matmul roof {roof:.1f} "
          f"GFLOP/s; vector width {vector_width()}\n")
    print(table(dc_rows, ["what", "images_per_s", "vs_pytorch", "gflop_per_s",
                          "fraction_of_matmul_roof"]))
    if args.default_run and not args.quick:
        with tempfile.TemporaryDirectory(prefix="vs-pytorch-") as workdir:
            run = default_run(workdir)
        out["default_run"] = {**run, "pytorch_dcgan_images_per_s": base}
        print(f"\n`tfgan-app train` (default preset {run['preset']}, {run['epochs']} epochs, "
              f"whole process): {run['wall_s']:.0f} s on the machine where PyTorch's DCGAN "
              f"above ran at {base:.0f} images/s")
    path = write(args.name, out, quick=args.quick)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
