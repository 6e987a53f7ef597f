#!/bin/bash
# Issue 18 on the device machine's host CPU (Intel Xeon with AMX-BF16): every acceptance case of benchmarks/run_all.py
# at ONE thread per process, the processes side by side (each run_all process measures the conv peak just before its
# case, under the same load), plus two Gatys loss-agreement runs (plain fp32 vs imgforge bf16 at equal evaluation
# counts) with more threads. Ends within MAXS s; leaves exactly one file: $OUT/amx.tgz (the .md/.json/.log/.txt).
# Env: R (scratch), OUT, PY (python3), MAXS (400), QUICK=1 (run_all --quick sizes; for a smoke test).
# Afterwards (here): tar xzf amx.tgz -C /tmp/amx && python benchmarks/run_all.py --merge /tmp/amx \
#   --out benchmarks/results/summary_amx.md
R=${R:-/tmp/r}/amx; O=${OUT:-/tmp/out}; PY=${PY:-python3}; MAXS=${MAXS:-400}; QUICK=${QUICK:-0}
rm -rf "$R"; mkdir -p "$R" "$O"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
[ -f .gpu/amx_data/photos/astronaut.png ] && export IMGFORGE_DATA_DIR=$PWD/.gpu/amx_data
T0=$(date +%s); B=$((MAXS - 45))   # run_all budgets; the rest: the idle peak, the merge and the tarball
el(){ echo $(( $(date +%s) - T0 )); }
Q=""; NA="1,60"; TA=2; TB=4
[ "$QUICK" = 1 ] && { Q="--quick"; NA="1,3"; NB="1,5"; TA=1; TB=1; }
{ lscpu; echo; echo "nproc $(nproc)"; grep -m1 -o 'amx[a-z_0-9]*' /proc/cpuinfo | sort -u; nvidia-smi -L 2>&1 | head -2; } \
  > $R/lscpu.txt 2>&1
grep -o -w -E 'amx_bf16|amx_tile|amx_int8|avx512_bf16|avx512_fp16' /proc/cpuinfo | sort | uniq -c >> $R/lscpu.txt
$PY -c "import torch; print(torch.__version__); print('cpu capability', torch.backends.cpu.get_cpu_capability()); print(torch.__config__.show())" \
  > $R/torch_config.txt 2>&1
( while :; do echo "$(el)s $(cat /proc/loadavg)" >> $R/load.txt; sleep 20; done ) & LOADP=$!
ps -eo pid,pcpu,comm --sort=-pcpu | head -12 > $R/ps_start.txt
one(){ name=$1; th=$2; budget=$3; shift 3   # one run_all process, its own --out, its own time limit
  ( s=$(date +%s)
    timeout --foreground -s TERM $((budget + 15)) $PY benchmarks/run_all.py --device cpu --threads $th $Q \
      --budget $budget --case-timeout $budget --out $R/$name.md "$@" > $R/$name.log 2>&1
    echo "$name rc=$? $(( $(date +%s) - s ))s (threads $th, started at $(( s - T0 )) s)" >> $R/status ) & JOBS="$JOBS $!"; }
# 1 thread each, side by side: the feed-forward cases, inversion, Gatys per-iteration time (auto = fp32, and bf16)
for c in fast adain cyclegan pix2pix; do one $c 1 $B --cases $c; done
one invert 1 $B --cases invert
one gatys_time 1 $B --cases gatys
# Gatys agreement (bf16 vs the plain fp32 loop, equal evaluation counts): a safe one now, a longer one with more
# threads once the feed-forward cases are done (so that at most ~8 of our threads run at once)
# (--gatys-n, --variants and --merge are on branch h2 of run_all.py: without them, only the 1-thread cases run)
NEW=0; grep -q "def merge" benchmarks/run_all.py && NEW=1
[ $NEW = 1 ] || echo "run_all.py without --gatys-n/--variants/--merge (branch h2 not merged): no agreement runs" | tee -a $R/status
[ $NEW = 1 ] && one gatys_agree_$TA"t" $TA $B --cases gatys --gatys-n $NA --variants bf16
[ $NEW = 1 ] && ( while [ "$(grep -cE '^(fast|adain|cyclegan|pix2pix) ' $R/status 2>/dev/null)" != 4 ] && [ $(el) -lt $((B / 2)) ]; do
    sleep 3; done
  left=$((B - $(el))); echo "agree_b start at $(el) s, budget $left s" >> $R/status
  # evaluations that fit: ~1.2 s per plain fp32 + bf16 pair at 4 threads (guessed), with a 1.5x margin; <= 300
  NB=${NB:-1,$(( left * 10 / 18 > 300 ? 300 : left * 10 / 18 ))}; echo "agree_b --gatys-n $NB" >> $R/status
  if [ $left -gt 90 ]; then s=$(date +%s)
    timeout --foreground -s TERM $((left + 15)) $PY benchmarks/run_all.py --device cpu --threads $TB $Q --budget $left \
      --case-timeout $left --out $R/gatys_agree_${TB}t_long.md --cases gatys --gatys-n $NB --variants bf16 \
      > $R/gatys_agree_${TB}t_long.log 2>&1
    echo "gatys_agree_${TB}t_long rc=$? $(( $(date +%s) - s ))s" >> $R/status; fi ) & JOBS="$JOBS $!"
sleep 30; ps -eo pid,pcpu,comm --sort=-pcpu | head -16 > $R/ps_30s.txt
wait $JOBS
# the conv peak once more with none of our other processes running (the GPU jobs may still be)
[ $(el) -lt $((MAXS - 25)) ] && timeout --foreground -s TERM 20 $PY benchmarks/run_all.py --device cpu --threads 1 $Q \
  --cases "" --out $R/peak_idle.md > $R/peak_idle.log 2>&1
kill $LOADP 2>/dev/null
echo "--- all done at $(el) s"; cat $R/status
cat > $R/notes.md <<EOF
## How this was run (benchmarks via .gpu/amx_cmd.sh on the device machine's host CPU)

- One run_all process per case, side by side, each \`OMP_NUM_THREADS=1 --threads 1\` (the GPU jobs of the same device
  run used ~4-5 other cores; see the load line); each process measured the conv peak just before its case.
- Gatys per-iteration time: \`gatys_time\` (1 thread, (T(13) - T(3)) / 10, auto = fp32 on CPUs, and bf16). The 300
  iterations the issue asks do not fit this budget at one thread, so the bf16-vs-fp32 loss/style/content agreement is
  measured at the largest evaluation count that fit: \`gatys_agree_*\` rows (--variants bf16 --gatys-n 1,N at
  $TA and $TB threads; their per-iteration times are at those thread counts, not one thread).
- \`peak_idle\`: the conv peak measured again after all cases, with none of these processes running.
- budget MAXS=$MAXS s, QUICK=$QUICK; status: $(tr '\n' ';' < $R/status)
EOF
[ $NEW = 1 ] && timeout 60 $PY benchmarks/run_all.py --merge $R --out $R/summary_amx.md 2>&1 | tail -40
tail -n 3 $R/*.log | cut -c1-400
cd $R && tar czf $O/amx.tgz --exclude=amx.tgz *.md *.json *.log *.txt status 2>/dev/null
ls -la $O/amx.tgz; echo "--- end at $(el) s"
