#!/bin/sh
# Leave-one-site-out runs (CIA, BOREAS, Kranj held out) and seeds 1-2 of the shipped deep
# configurations (docs/deep.md), then their benches, in two lanes of one thread each: about
# 40 minutes on the 2-core development machine.
# Outputs in $OUT (default /tmp/deep); tables: python tools/deep_generalisation_table.py $OUT
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/deep}
PY=${PYTHON:-.venv/bin/python}
S="$PY -m stfusion.cli"
CAT=$OUT/catalog
$PY tools/make_training_catalog.py $CAT
for site in cia boreas kranj; do
  head -1 $CAT/catalog.csv > $CAT/no$site.csv
  grep -v "^$site," $CAT/catalog.csv | tail -n +2 >> $CAT/no$site.csv
done

train_set () {  # $1 tag, $2 catalog, $3 seed: the shipped protocol (docs/deep.md)
  T=$OUT/$1; mkdir -p $T
  C="--catalog $2 --patch 48 --batch 8 --steps-per-epoch 40 --lr 5e-4 --seed $3 --threads 1 --device cpu --init none --ae-steps 100"
  /usr/bin/time -f "%e s" -o $T/edcstfn.time $S train --model edcstfn --size small --epochs 15 --patience 5 $C --out $T/edcstfn.ckpt -q > $T/edcstfn.log 2>&1
  # The student is distilled from this run's EDCSTFN (as the shipped one from the shipped).
  /usr/bin/time -f "%e s" -o $T/student.time $S distill --teacher $T/edcstfn.ckpt --student micro --epochs 8 --patience 4 --catalog $2 --patch 48 --batch 8 --steps-per-epoch 40 --lr 5e-4 --seed $3 --threads 1 --device cpu --out $T/student.ckpt -q > $T/student.log 2>&1
  for m in vitgan:tiny ganstfm:small dcstfn:small; do
    /usr/bin/time -f "%e s" -o $T/${m%%:*}.time $S train --model ${m%%:*} --size ${m##*:} --epochs 8 --patience 4 $C --out $T/${m%%:*}.ckpt -q > $T/${m%%:*}.log 2>&1
  done
  /usr/bin/time -f "%e s" -o $T/stfdcnn.time $PY -c "from stfusion.dl.train_stfdcnn import STFDCNNConfig, train_stfdcnn; \
  train_stfdcnn(None, '$T/stfdcnn.ckpt', STFDCNNConfig(size='small', factor=2, window=5, \
  epochs=8, steps_per_epoch=40, patch=48, batch=8, lr=5e-4, patience=4, threads=1, \
  device='cpu', val_patches=64, seed=$3), catalog='$2')" > $T/stfdcnn.log 2>&1
}
bench_set () {  # $1 tag, $2 cases
  T=$OUT/$1; W=""; M=""
  for m in edcstfn student vitgan ganstfm dcstfn stfdcnn; do
    [ -f $T/$m.ckpt ] && W="$W -p $m.weights=$T/$m.ckpt" && M="$M,$m"
  done
  $S bench --cases $2 --methods ${M#,} $W --no-figures -o $T/bench --overwrite > $T/bench.log 2>&1
}
held_out () {
  train_set loso_cia $CAT/nocia.csv 0
  bench_set loso_cia cia-1pair,cia-2pair
  train_set loso_boreas $CAT/noboreas.csv 0
  bench_set loso_boreas boreas-1pair,boreas-2pair
  train_set loso_kranj $CAT/nokranj.csv 0
  bench_set loso_kranj kranj-2pair
}
seeds () {
  for s in 1 2; do
    train_set seed$s $CAT/catalog.csv $s
    bench_set seed$s cia-1pair,boreas-1pair,lgc-flood,boreas-2pair,kranj-2pair
  done
}
held_out > $OUT/held_out.log 2>&1 &
A=$!
seeds > $OUT/seeds.log 2>&1 &
B=$!
wait $A
wait $B
$PY tools/deep_generalisation_table.py $OUT
