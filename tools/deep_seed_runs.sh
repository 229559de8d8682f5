#!/bin/sh
# Seed variance of the shipped deep configurations (seeds 1-2) and the paper-size GAN-STFM
# teacher candidate; about 40 minutes on 2 cores. Outputs in $OUT (default /tmp/seeds).
mkdir -p "${OUT:-/tmp/seeds}"
cd "$(dirname "$0")/.."
D=../shared/data/cia_e2starfm/geotiff_50m
P="--pair $D/CIA_Landsat7_2001-10-08.tif $D/CIA_MOD09GA_2001-10-08.tif --pair $D/CIA_Landsat7_2001-10-17.tif $D/CIA_MOD09GA_2001-10-17.tif"
S=.venv/bin/stfusion
# core A: the paper-size GAN-STFM (teacher candidate, issue 7)
( $S train --model ganstfm --size paper --epochs 60 --adv-weight 0.01 --fm-weight 1 --seed 0 --threads 1 $P --out ${OUT:-/tmp/seeds}/gan_paper.ckpt -q > ${OUT:-/tmp/seeds}/gan_paper.log 2>&1 ) &
# core B: seeds 1 and 2 of the shipped EDCSTFN and GAN-STFM configurations
( for s in 1 2; do
    $S train --model edcstfn --size paper --epochs 60 --seed $s --threads 1 $P --out ${OUT:-/tmp/seeds}/edcstfn_s$s.ckpt -q > ${OUT:-/tmp/seeds}/edcstfn_s$s.log 2>&1
    $S train --model ganstfm --size small --epochs 60 --adv-weight 0.01 --fm-weight 1 --seed $s --threads 1 $P --out ${OUT:-/tmp/seeds}/gan_s$s.ckpt -q > ${OUT:-/tmp/seeds}/gan_s$s.log 2>&1
  done ) &
wait
echo done > ${OUT:-/tmp/seeds}/DONE
