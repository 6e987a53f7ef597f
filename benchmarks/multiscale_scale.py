"""ProGAN and MSG-GAN at 128 x 128 on a folder of photos: CPU time per image at each resolution, peak memory, and
a few hundred steps of the real ``imgforge gan train`` command (issue 15, "Scale").

    OMP_NUM_THREADS=1 python benchmarks/multiscale_scale.py      # everything (~20 min on one EPYC thread)
    python benchmarks/multiscale_scale.py --skip-runs            # the per-resolution table only (~3 min)
    python benchmarks/multiscale_scale.py --skip-table --runs-arch msggan --msggan-steps 400
    python benchmarks/multiscale_scale.py --report-only --observations "..."   # rewrite the md from the json

Data: the photos of the CMP facades training split (``--facades``, default ``$IMGFORGE_DATA_DIR/facades/train``,
else ``../shared/data/facades/train``: 400 images of 512 x 256, photo on the left, label map on the right).
``gan train`` centre-crops, so the left halves are written to a temporary folder (``--photos``, default under the
system temp dir) and that folder is the training data. Facades are for tests and benchmarks only: nothing trained
here is shipped. Without the facades folder the script says so and exits 0.

Per-resolution table (``--skip-table`` to leave out): each case runs in a fresh Python process (so its peak RSS is
its own), builds the run's :class:`~imgforge.training.gan.GANMethod` exactly as ``gan train`` does (same data
loader, same networks, the arch's default loss and optimiser, G's moving average on) and times
``method.step`` -- one discriminator step and one generator step (forward + backward + Adam, the penalty and drift
where the loss has them, the EMA update) -- after ``--warmup`` untimed steps; the median of ``--reps`` steps is
reported, per step and per image (step time / batch). ProGAN: the stage's network at 4, 8, ..., 128 (``--resolution
128``, channels ``min(8 width, width * 128 / side)``) at alpha = 1 and, from 8 on, in the middle of the fade-in
(alpha = 0.5: both toRGB / fromRGB paths run, and the real batch is blended); the stage is pinned by replacing the
method's schedule function, everything else is the training step. MSG-GAN: all scales at once, ``--resolution``
32, 64 and 128. Peak RSS: ``ru_maxrss`` of the case's process (Python + torch + the 400 decoded photos + networks +
the steps); "before" is the RSS after building the method, before the first step.

Few-hundred-step runs (``--skip-runs`` to leave out): ``python -m imgforge gan train PHOTOS --arch progan|msggan
--resolution 128 --channels 3 ...`` in a subprocess, timed from outside, peak RSS from ``os.wait4``'s rusage of
that process. ProGAN's ``--phase-images`` / ``--fade-images`` are set so that it reaches 128 x 128 after a few
dozen steps per stage and then trains ``--progan-steps-at-128`` steps there.

Results: ``--json`` (default benchmarks/results/multiscale_128.json) and ``--md`` (default
benchmarks/results/multiscale_128.md). Run folders go to the temp dir. One thread by default (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def prepare_photos(facades: Path, out: Path) -> int:
    """Write the left (photo) half of every facades image in ``facades`` to ``out`` (256 x 256 PNG)."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for p in sorted(facades.glob("*.jpg")):
        target = out / f"{p.stem}.png"
        if not target.exists():
            with Image.open(p) as im:
                w, h = im.size
                im.convert("RGB").crop((0, 0, w // 2, h)).save(target)
        n += 1
    return n


# ---- one case, in its own process ----------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def run_case(args: argparse.Namespace) -> Dict[str, Any]:
    import torch

    sys.path.insert(0, str(REPO))
    from imgforge.data.gan_images import load_training_images
    from imgforge.training.gan import ARCH_DEFAULT_LOSS, GANTrainConfig, method_class
    from imgforge.training.loop import DeterministicBatches

    torch.set_num_threads(args.threads)
    arch, res = args.case_arch, args.case_resolution
    cfg = GANTrainConfig(arch=arch, loss=ARCH_DEFAULT_LOSS[arch], resolution=res, batch_size=args.batch,
                         width=args.width)
    data = load_training_images(args.photos, res, channels=3)
    method = method_class(arch)(cfg, data, "cpu", seed=0)
    if arch == "progan":
        level, alpha = args.case_level, args.case_alpha
        method.stage = lambda step: (level, alpha)  # pin the stage; the step is the training step
        side = 4 * 2 ** level
    else:
        side = res
    order = DeterministicBatches(len(data), args.batch, seed=0)
    before = rss_mb()
    times: List[float] = []
    for s in range(args.warmup + args.reps):
        t0 = time.perf_counter()
        out = method.step([order.local_batch(s)], s)
        if s >= args.warmup:
            times.append(time.perf_counter() - t0)
    if arch == "progan":
        assert out["resolution"] == side and abs(out["alpha"] - args.case_alpha) < 1e-9, out
    sec = statistics.median(times)
    return {"arch": arch, "loss": cfg.loss, "resolution": res, "side": side,
            "alpha": args.case_alpha if arch == "progan" else None, "batch": args.batch, "width": args.width,
            "G_params": sum(p.numel() for p in method.G.parameters()),
            "D_params": sum(p.numel() for p in method.D.parameters()),
            "s_per_step": sec, "ms_per_image": 1000 * sec / args.batch, "times": times,
            "rss_before_mb": before, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "loss_D": out["loss_D"], "loss_G": out["loss_G"]}


def table_cases(args: argparse.Namespace) -> List[List[str]]:
    cases = []
    for level in range(6):  # 4 .. 128
        for alpha in ([1.0] if level == 0 else [0.5, 1.0]):
            cases.append(["--case-arch", "progan", "--case-resolution", "128", "--case-level", str(level),
                          "--case-alpha", str(alpha)])
    for res in (32, 64, 128):
        cases.append(["--case-arch", "msggan", "--case-resolution", str(res)])
    return cases


def run_table(args: argparse.Namespace) -> List[Dict[str, Any]]:
    rows = []
    common = ["--photos", str(args.photos), "--batch", str(args.batch), "--width", str(args.width), "--threads",
              str(args.threads), "--warmup", str(args.warmup), "--reps", str(args.reps)]
    for case in table_cases(args):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", *common, *case]
        p = subprocess.run(cmd, capture_output=True, text=True, env=_env(args))
        if p.returncode:
            raise SystemExit(f"case {' '.join(case)} failed:\n{p.stderr}")
        row = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{row['arch']:7s} side {row['side']:4d} alpha {row['alpha'] if row['alpha'] is not None else '-'!s:4s}"
              f" {row['s_per_step']:.3f} s/step {row['ms_per_image']:.1f} ms/img peak {row['peak_rss_mb']:.0f} MB",
              flush=True)
    return rows


# ---- few-hundred-step runs ------------------------------------------------------------------------------------------


def _env(args: argparse.Namespace) -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def long_commands(args: argparse.Namespace) -> List[Dict[str, Any]]:
    runs = []
    # ProGAN: per stage (4 .. 64) phase + fade images, then --progan-steps-at-128 steps at 128 (the last fade ends
    # when 128 x 128 starts at alpha 0: the steps at 128 include its fade-in, then full strength).
    b = args.progan_batch
    per = args.progan_stage_steps * b  # images per phase and per fade
    pre = per + 4 * 2 * per  # 4x4 phase, then (fade + phase) for 8, 16, 32, 64
    steps = (pre + per) // b + args.progan_steps_at_128  # + the fade-in of 128
    base = [sys.executable, "-m", "imgforge", "--seed", "0", "gan", "train", str(args.photos), "--resolution",
            "128", "--channels", "3"]
    runs.append({"arch": "progan", "steps": steps, "batch": b, "width": args.width,
                 "cmd": base + ["--arch", "progan", "--width", str(args.width), "--batch-size", str(b), "--steps",
                                str(steps), "--phase-images", str(per), "--fade-images", str(per),
                                "--sample-every", str(steps), "--checkpoint-every", str(steps), "--log-every", "20",
                                "--run-dir", str(args.runs / "progan128")],
                 "stage_steps": args.progan_stage_steps, "steps_at_128": (per // b) + args.progan_steps_at_128})
    b = args.msggan_batch
    runs.append({"arch": "msggan", "steps": args.msggan_steps, "batch": b, "width": args.width,
                 "cmd": base + ["--arch", "msggan", "--width", str(args.width), "--batch-size", str(b), "--steps",
                                str(args.msggan_steps), "--sample-every", str(args.msggan_steps),
                                "--checkpoint-every", str(args.msggan_steps), "--log-every", "20",
                                "--run-dir", str(args.runs / "msggan128")]})
    return runs


def run_long(args: argparse.Namespace) -> List[Dict[str, Any]]:
    rows = []
    for r in long_commands(args):
        if r["arch"] not in args.runs_arch:
            continue
        print("$ " + " ".join(shlex.quote(c) for c in r["cmd"]), flush=True)
        log = args.runs / f"{r['arch']}128.log"
        args.runs.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with open(log, "w") as f:
            p = subprocess.Popen(r["cmd"] + ["--restart"], stdout=f, stderr=subprocess.STDOUT, env=_env(args),
                                 cwd=str(REPO))
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if p.returncode:
            raise SystemExit(f"{r['arch']} run failed (exit {p.returncode}), see {log}")
        hist = [json.loads(x) for x in (args.runs / f"{r['arch']}128" / "losses.jsonl").read_text().splitlines()]
        last = hist[-1]
        r.update(wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, peak_rss_mb=usage.ru_maxrss / 1024,
                 s_per_image=wall / (r["steps"] * r["batch"]), log=str(log), run_dir=str(args.runs / f"{r['arch']}128"),
                 last={k: last[k] for k in ("step", "loss_D", "loss_G", "resolution", "alpha") if k in last})
        r["cmd"] = " ".join(shlex.quote(c) for c in r["cmd"])
        rows.append(r)
        print(f"{r['arch']}: {r['steps']} steps in {wall:.0f} s ({r['s_per_image'] * 1000:.0f} ms/image), peak RSS "
              f"{r['peak_rss_mb']:.0f} MB; last {r['last']}", flush=True)
    return rows


# ---- report ---------------------------------------------------------------------------------------------------------


def write_md(path: Path, res: Dict[str, Any]) -> None:
    from imgforge.models.multiscale_gan import level_channels

    m = res["machine"]
    lines = ["# ProGAN and MSG-GAN at 128 x 128 on photos: CPU time per image and memory", "",
             "Written by `benchmarks/multiscale_scale.py` (issue 15, Scale). Data: the 400 photos of the CMP facades "
             "training split (left halves, 256 x 256, resized by `gan train` to the run's resolution); facades are "
             "for benchmarks only, nothing trained here is shipped.", "",
             f"Machine: {m['cpu']}, {m['cpus']} CPU(s) (shared with other work while measured), torch "
             f"{m['torch']}, {m['threads']} thread(s). Measured {m['date']}.", ""]
    table = res.get("table")
    if table:
        t0 = table[0]
        lines += ["## Time per image at each resolution", "",
                  f"One training step = one D step + one G step of the arch's default loss and optimiser (ProGAN "
                  f"wgan-gp with its drift term, Adam 1e-3; MSG-GAN relativistic hinge, Adam 3e-3), G's moving "
                  f"average updated, batch {t0['batch']}, `--width {t0['width']}` (channels min(8 width, width * R / "
                  f"side): {', '.join(str(c) for c in res['channels'])} at 4 ... 128 for R = 128), median of "
                  f"{res['args']['reps']} steps after {res['args']['warmup']} warm-up step(s), each case in a fresh "
                  "process. ProGAN: `--resolution 128`, the stage pinned (alpha 0.5 = the middle of the fade-in of "
                  "that side: both toRGB/fromRGB paths and the blended real batch). MSG-GAN: every scale from 4 up to "
                  "the resolution at once. RSS: after building the run (Python, torch, the 400 decoded photos at the "
                  "run's resolution, networks) and the peak during the steps.", "",
                  "| arch | resolution (stage) | alpha | channels 4 ... side | G / D params (whole nets) | batch | "
                  "s per step | ms per image | RSS before steps MB | peak RSS MB |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in table:
            stage = f"{r['side']}² (--resolution {r['resolution']})"
            alpha = "-" if r["alpha"] is None else f"{r['alpha']:g}"
            chans = level_channels(r["resolution"], r["width"])[:(r["side"] // 4).bit_length()]
            lines.append(f"| {r['arch']} | {stage} | {alpha} | {', '.join(map(str, chans))} | "
                         f"{r['G_params']:,} / {r['D_params']:,} | {r['batch']} | "
                         f"{r['s_per_step']:.3f} | {r['ms_per_image']:.1f} | {r['rss_before_mb']:.0f} | "
                         f"{r['peak_rss_mb']:.0f} |")
        top = {r["arch"]: r for r in table if r["side"] == 128 and r["alpha"] in (None, 1.0)}
        if len(top) == 2:
            lines += ["", "At 128²: ProGAN {:.0f} ms per image ({:.2f} s per step of {}), MSG-GAN {:.0f} ms per image "
                      "({:.2f} s), peak RSS {:.2f} / {:.2f} GB.".format(
                          top["progan"]["ms_per_image"], top["progan"]["s_per_step"], top["progan"]["batch"],
                          top["msggan"]["ms_per_image"], top["msggan"]["s_per_step"],
                          top["progan"]["peak_rss_mb"] / 1024, top["msggan"]["peak_rss_mb"] / 1024)]
        lines += ["", "A ProGAN stage at side s inside a `--resolution 128` run keeps the channels of the 128 network "
                  "(128 up to 16², halving only above), so it costs more than an MSG-GAN trained at `--resolution s` "
                  "(whose channels halve from 8²); from 16² on every ProGAN stage adds about the same work "
                  "(side² x channels² constant), and the wgan-gp penalty adds a second backward pass through D.", ""]
    runs = res.get("runs")
    if runs:
        lines += ["## A few hundred steps at 128 x 128 with `imgforge gan train`", "",
                  "Wall time measured around the command (includes start-up, loading the photos, the sample grid "
                  "and the checkpoint/export at the end); CPU = user + system seconds of the process; peak RSS from "
                  "the process's rusage. s per image = wall / (steps x batch).", "",
                  "| arch | steps | batch | width | wall s | CPU s | s per image | peak RSS MB | last logged step |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in runs:
            last = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in r["last"].items())
            lines.append(f"| {r['arch']} | {r['steps']} | {r['batch']} | {r['width']} | {r['wall_s']:.0f} | "
                         f"{r['cpu_s']:.0f} | {r['s_per_image']:.3f} | {r['peak_rss_mb']:.0f} | {last} |")
        lines.append("")
        for r in runs:
            if r["arch"] == "progan":
                lines.append(f"ProGAN schedule: {r['stage_steps']} steps per phase and per fade-in at 4 ... 64 "
                             f"(`--phase-images` = `--fade-images` = {r['stage_steps'] * r['batch']}), so it reaches "
                             f"128² at step {r['steps'] - r['steps_at_128']} and trains {r['steps_at_128']} steps "
                             f"there ({r['stage_steps']} fading in, the rest at alpha 1).")
        lines += ["", "Commands:", "", "```"] + [r["cmd"] for r in runs] + ["```", ""]
        lines += ["(run with `OMP_NUM_THREADS=1` and `PYTHONPATH` = the repository; the runs add `--restart`.)", ""]
        if res.get("observations"):
            lines += ["Samples: " + res["observations"], ""]
        pics = [f"![{a} scales]({a})" for a in res.get("pictures", [])]
        if pics:
            lines += ["Per-scale outputs of the final generators (rows 4² ... 128², coarse to fine, each "
                      "upsampled to 128; columns: seeds 0-3): " + " ".join(pics), ""]
    lines += ["Reproduce: `OMP_NUM_THREADS=1 python benchmarks/multiscale_scale.py`"
              + (f" {res['argv']}" if res.get("argv") else "") + ".", ""]
    path.write_text("\n".join(lines))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = Path(os.environ.get("IMGFORGE_DATA_DIR", REPO.parent / "shared" / "data"))
    ap.add_argument("--facades", type=Path, default=data / "facades" / "train")
    ap.add_argument("--photos", type=Path, default=Path(tempfile.gettempdir()) / "imgforge_facades_photos")
    ap.add_argument("--runs", type=Path, default=Path(tempfile.gettempdir()) / "imgforge_multiscale128_runs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8, help="batch of the per-resolution table")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-table", action="store_true")
    ap.add_argument("--skip-runs", action="store_true")
    ap.add_argument("--runs-arch", nargs="+", default=["progan", "msggan"])
    ap.add_argument("--progan-batch", type=int, default=8)
    ap.add_argument("--progan-stage-steps", type=int, default=20)
    ap.add_argument("--progan-steps-at-128", type=int, default=150)
    ap.add_argument("--msggan-batch", type=int, default=8)
    ap.add_argument("--msggan-steps", type=int, default=300)
    ap.add_argument("--observations", default="", help="a sentence on the sample grids, copied into the md")
    ap.add_argument("--report-only", action="store_true", help="rewrite --md from --json (e.g. with --observations)")
    ap.add_argument("--json", type=Path, default=RESULTS / "multiscale_128.json")
    ap.add_argument("--md", type=Path, default=RESULTS / "multiscale_128.md")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--case-arch", help=argparse.SUPPRESS)
    ap.add_argument("--case-resolution", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--case-level", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--case-alpha", type=float, default=1.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_case(args)))
        return 0
    if args.report_only:
        sys.path.insert(0, str(REPO))
        res = json.loads(args.json.read_text())
        if args.observations:
            res["observations"] = args.observations
        res["pictures"] = [p.name for p in sorted(args.md.parent.glob("multiscale_128_*_scales.png"))]
        args.json.write_text(json.dumps(res, indent=1))
        write_md(args.md, res)
        print(f"wrote {args.md}")
        return 0
    if not args.facades.is_dir():
        print(f"skipped: no facades folder at {args.facades} (give --facades DIR with the 512 x 256 CMP facades "
              "images)")
        return 0
    n = prepare_photos(args.facades, args.photos)
    print(f"{n} photos (left halves) in {args.photos}", flush=True)
    import torch

    sys.path.insert(0, str(REPO))
    from imgforge.models.multiscale_gan import level_channels

    res: Dict[str, Any] = json.loads(args.json.read_text()) if args.json.is_file() else {}
    res.update(machine={"cpu": cpu_model(), "cpus": os.cpu_count(), "threads": args.threads,
                        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
               channels=level_channels(128, args.width), args={k: str(v) for k, v in vars(args).items()},
               argv=" ".join(argv if argv is not None else sys.argv[1:]))
    if not args.skip_table:
        res["table"] = run_table(args)
        args.json.write_text(json.dumps(res, indent=1))
    if not args.skip_runs:
        res["runs"] = run_long(args)
    if args.observations:
        res["observations"] = args.observations
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=1))
    write_md(args.md, res)
    print(f"wrote {args.md} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
