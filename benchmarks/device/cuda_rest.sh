#!/bin/bash
# GPU run 4b (issue 18 item 4): the cases of run_all.py --device cuda that the last budget cut (pix2pix, inversion,
# Gatys, with their fp16/bf16 and torch.compile variants), with the real benchmark images when carried.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}; mkdir -p $O
D=.gpu/amx_data; [ -f $D/photos/astronaut.png ] && export IMGFORGE_DATA_DIR=$PWD/$D
timeout --foreground -s TERM $(( ${B:-140} + 20 )) ${PY:-python3} benchmarks/run_all.py --quick --device cuda \
  --cases ${CASES:-pix2pix,invert,gatys} --budget ${B:-140} --out $O/summary_cuda_rest.md
ls -la $O
