#!/bin/bash
# Feed-forward style decoders for the embedded encoder (issue 16 item 7); needs branch h1's code
# (train_adain_decoder.py --init-decoder/--max-seconds/--device/--warmup-steps, finetune_wct_decoders.py).
# Env: R scratch dir, OUT output dir, PY python (python3), DEV device (cuda), MAXS training wall seconds (380),
#   RUNS AdaIN runs, one training process each, as STYLEWEIGHT:IDENTITYWEIGHT (default "10:100 40:100": the
#        reference loss plus an identity (pixel reconstruction, MSE x 100) loss that keeps the decoder
#        reconstructing. CPU probes (64 px, batch 4, lr 3e-5, ~110-230 steps; shipped decoder 4.43x / 1.19x Gatys):
#        10:0 -> 4.11x / 1.46x, 40:0 -> 5.88x / 1.47x, 10:100 -> 2.65x / 1.09x (style / content ratios, 12 pairs))
#   WCT  1 (default) = also a 3rd process fine-tuning the WCT level 1-3 decoders for reconstruction; 0 = not.
#   LR   AdaIN learning rate (3e-5; 1e-4 raised the loss during a CPU probe), WLR the WCT one (3e-5), WARM warm-up steps (300).
# Data: .gpu/adain_data/content (the fast-style content set, 18 images; held-out chelsea/astronaut/coffee NOT in it),
#   .gpu/adain_data/styles (the 4 evaluation paintings + 2 face paintings + brick/grass/gravel textures: the
#   evaluation paintings ARE training styles, as for the fast-style network).
# AdaIN: from the shipped least-squares decoder; reference loss (relu4_1 content vs the AdaIN target, mean/std style
#   loss relu1_1..relu4_1), batch 8, 128 px random crops of 160 px squares, Adam with warm-up + inverse decay.
# Writes exactly 2 files into $OUT: style-decoders.tgz (adain-swW-idI.safetensors float16 ~7 MB each (2 at most),
#   wct-decoders.safetensors float16 1.3 MB; ~14 MB in all) and style-logs.tgz (logs, losses, configs, samples).
R=${R:-/tmp/style_r}; OUT=${OUT:-/tmp/style_out}; PY=${PY:-python3}; DEV=${DEV:-cuda}; MAXS=${MAXS:-380}
RUNS=${RUNS:-10:100 40:100}; WCT=${WCT:-1}; LR=${LR:-3e-5}; WLR=${WLR:-3e-5}; WARM=${WARM:-300}
mkdir -p "$R/dec" "$R/logs" "$OUT"; : > "$R/logs/status"
D=.gpu/adain_data
for RUN in $RUNS; do
  SW=${RUN%%:*}; ID=${RUN#*:}; N=sw$SW-id$ID
  ( OMP_NUM_THREADS=2 timeout --foreground -s TERM $((MAXS + 60)) $PY weights/recipes/train_adain_decoder.py \
      --init-decoder weights/imgforge-adain-decoder-embedded.safetensors \
      --content-dir $D/content --style-dir $D/styles --run-dir "$R/$N" \
      --steps 1000000 --max-seconds "$MAXS" --device "$DEV" --image-size 128 --resize 160 --batch-size 8 \
      --lr "$LR" --warmup-steps "$WARM" --style-weight "$SW" --identity-weight "$ID" --checkpoint-every 1000 --log-every 100 --half \
      --out "$R/dec/adain-$N.safetensors" > "$R/logs/adain-$N.log" 2>&1
    echo "adain-$N rc=$?" >> "$R/logs/status"
    for f in config.json losses.jsonl; do cp "$R/$N/run/$f" "$R/logs/adain-$N-$f" 2>/dev/null; done
    for f in $(ls "$R/$N/run/samples/"*.png 2>/dev/null | tail -n 3); do cp "$f" "$R/logs/adain-$N-$(basename "$f")"; done
  ) &
done
if [ "$WCT" = 1 ]; then
  ( OMP_NUM_THREADS=2 timeout --foreground -s TERM $((MAXS + 60)) $PY weights/recipes/finetune_wct_decoders.py \
      --images $D/content $D/styles --run-dir "$R/wct" --steps 1000000 --max-seconds "$MAXS" --device "$DEV" \
      --image-size 128 --resize 160 --batch-size 8 --lr "$WLR" --warmup-steps "$WARM" --checkpoint-every 1000 \
      --log-every 100 --out "$R/dec/wct-decoders.safetensors" > "$R/logs/wct.log" 2>&1
    echo "wct rc=$?" >> "$R/logs/status"
    cp "$R/wct/losses.jsonl" "$R/logs/wct-losses.jsonl" 2>/dev/null
  ) &
fi
wait
nvidia-smi > "$R/logs/nvidia-smi.txt" 2>&1
cat "$R/logs/status"; for f in "$R"/logs/*.log; do echo "== $f"; grep '^step' "$f" | tail -n 2; tail -n 2 "$f"; done
tar -czf "$OUT/style-decoders.tgz" -C "$R/dec" .
tar -czf "$OUT/style-logs.tgz" -C "$R/logs" .
ls -l "$OUT"
