#!/usr/bin/env bash
# ReSTR vs Shared-RIS on the synthetic benchmark, same budget: for each flavor (synth-refcoco,
# synth-refcoco+, synth-refcocog) generate the dataset if missing, train restr-tiny and
# shared-ris-tiny from scratch with the same steps, batch, learning-rate schedule and seed, score
# each run's best checkpoint on val with `refseg eval --json`, and write docs/comparison.md
# (scripts/compare-table.ts) with the metrics, the budget, per-run wall time, the machine and the
# exact commands.
#
#   npm run build                       # once: the script runs dist/
#   scripts/compare-models.sh DATA STEPS [THREADS]
#   STEPS=20000 IMAGES=2000 PARALLEL=1 scripts/compare-models.sh DATA
#   nice -n 19 env STEPS=20 IMAGES=60 RUNS=/tmp/cmp scripts/compare-models.sh /tmp/cmp-data
#
# Settings (arguments win over the environment):
#   DATA        dataset root (created; a flavor already there is reused)       $1 (required)
#   STEPS       optimizer steps per run (the budget)                          $2 (required)
#   THREADS     ONNX Runtime threads per process                              $3 (default: nproc; 1 with PARALLEL=1)
#   BATCH 8, LR 1e-4, WARMUP 0.1, SCHEDULE poly, SEED 0, CLIP off (global-norm clip)   the same for both models
#   EVAL_EVERY  in-training validation period (picks best.safetensors)      (default: STEPS/5, at least 1)
#   EVAL_SPLIT  split scored at the end                                        (default val)
#   IMAGES 2000, SIZE 128                                                      `refseg data synth` per flavor
#   PARALLEL    1: train/eval the two models of a flavor at the same time      (default 0)
#   RUNS        run folders RUNS/<model>-<flavor>                              (default runs/compare)
#   OUT         the report                                                     (default docs/comparison.md)
#   FLAVORS     space-separated subset of the three flavors                    (default all three)
#
# A run folder that exists is reused (a finished run is only re-evaluated; an interrupted one is
# continued with `refseg train --resume`) when it was made with the same budget (RUNS/<model>-<flavor>/compare.budget); with another budget the
# script stops: remove the folder or choose another RUNS.

set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${1:-${DATA:-}}
STEPS=${2:-${STEPS:-}}
PARALLEL=${PARALLEL:-0}
if [[ "$PARALLEL" == 1 ]]; then THREADS=${3:-${THREADS:-1}}; else THREADS=${3:-${THREADS:-$(nproc)}}; fi
BATCH=${BATCH:-8}
LR=${LR:-1e-4}
WARMUP=${WARMUP:-0.1}
SCHEDULE=${SCHEDULE:-poly}
SEED=${SEED:-0}
CLIP=${CLIP:-}
IMAGES=${IMAGES:-2000}
SIZE=${SIZE:-128}
EVAL_SPLIT=${EVAL_SPLIT:-val}
RUNS=${RUNS:-runs/compare}
OUT=${OUT:-docs/comparison.md}
FLAVORS=${FLAVORS:-synth-refcoco synth-refcoco+ synth-refcocog}
MODELS=(restr-tiny shared-ris-tiny)

die() { echo "compare-models: $*" >&2; exit 1; }
[[ -n "$DATA" && -n "$STEPS" ]] || die "usage: scripts/compare-models.sh DATA STEPS [THREADS] (see the header for the settings)"
[[ "$STEPS" =~ ^[1-9][0-9]*$ ]] || die "STEPS must be a positive integer, got '$STEPS'"
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$THREADS'"
[[ "$PARALLEL" == 0 || "$PARALLEL" == 1 ]] || die "PARALLEL must be 0 or 1, got '$PARALLEL'"
[[ -z "$CLIP" || "$CLIP" =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]] || die "CLIP must be a positive number, got '$CLIP'"
EVAL_EVERY=${EVAL_EVERY:-$(( STEPS / 5 > 0 ? STEPS / 5 : 1 ))}
for f in dist/src/cli/main.js dist/scripts/compare-table.js; do
  [[ -f "$f" ]] || die "$f is missing: build first (npm run build)"
done

BUDGET="steps=$STEPS batch=$BATCH lr=$LR warmup=$WARMUP schedule=$SCHEDULE seed=$SEED clip=${CLIP:-off} eval_every=$EVAL_EVERY images=$IMAGES size=$SIZE"

REFSEG=(node dist/src/cli/main.js)
mkdir -p "$RUNS" "$DATA"

# Runs a refseg command: output to $1, the command itself (`refseg ...`, shell-quoted) appended to
# $2, the record compare-table.ts prints (RUNS/data-<flavor>.cmd, RUNS/<run>/{train,eval}.cmd).
refseg() {
  local log=$1 cmd=$2
  shift 2
  echo "refseg$(printf ' %q' "$@")" >> "$cmd"
  "${REFSEG[@]}" "$@" > "$log" 2>&1 || { echo "compare-models: failed: refseg $* (output: $log)" >&2; tail -n 20 "$log" >&2; return 1; }
}

# Train (or resume) and evaluate one model on one flavor.
run_model() {
  local model=$1 flavor=$2
  local dir="$RUNS/$model-$flavor"
  local t0=$SECONDS
  mkdir -p "$dir"
  if [[ -f "$dir/compare.budget" ]]; then
    [[ "$(cat "$dir/compare.budget")" == "$BUDGET" ]] ||
      die "$dir was trained with another budget ($(cat "$dir/compare.budget")); remove it or set RUNS"
  fi
  echo "$BUDGET" > "$dir/compare.budget"
  local common=(--data "$DATA" --dataset "$flavor" --out "$dir" --threads "$THREADS" --quiet)
  local train=(train --config "$model" "${common[@]}" --steps "$STEPS" --batch "$BATCH" --lr "$LR"
    --warmup "$WARMUP" --schedule "$SCHEDULE" --seed "$SEED" --eval-every "$EVAL_EVERY")
  [[ -n "$CLIP" ]] && train+=(--clip-norm "$CLIP")
  if [[ -f "$dir/train-state.safetensors" && -f "$dir/log.jsonl" ]] && grep -q "\"step\":$STEPS,\"loss\"" "$dir/log.jsonl"; then
    echo "[$flavor] $model: already trained ($dir)"
  elif [[ -f "$dir/train-state.safetensors" ]]; then
    echo "[$flavor] $model: resuming $dir"
    refseg "$dir/train.out" "$dir/train.cmd" train --resume "${common[@]}"
  else
    echo "[$flavor] $model: training $STEPS steps ($THREADS threads)"
    : > "$dir/train.cmd"
    refseg "$dir/train.out" "$dir/train.cmd" "${train[@]}"
  fi
  [[ -f "$dir/best.safetensors" ]] || die "$dir: no best.safetensors after training"
  echo "[$flavor] $model: evaluating best.safetensors on $EVAL_SPLIT"
  : > "$dir/eval.cmd"
  refseg "$dir/eval.out" "$dir/eval.cmd" eval --checkpoint "$dir/best.safetensors" --data "$DATA" --dataset "$flavor" \
    --split "$EVAL_SPLIT" --threads "$THREADS" --json --out "$dir/eval.$EVAL_SPLIT"
  echo "[$flavor] $model: done in $(( SECONDS - t0 ))s"
}

start=$SECONDS
echo "compare-models: $BUDGET threads=$THREADS parallel=$PARALLEL data=$DATA runs=$RUNS"
for flavor in $FLAVORS; do
  case "$flavor" in synth-refcoco | synth-refcoco+ | synth-refcocog) ;; *) die "unknown flavor '$flavor'" ;; esac
  if [[ -f "$DATA/$flavor/instances.json" ]]; then
    echo "[$flavor] dataset: reusing $DATA/$flavor"
  else
    echo "[$flavor] dataset: generating $IMAGES images at $SIZE px"
    : > "$RUNS/data-$flavor.cmd"
    refseg "$RUNS/data-$flavor.out" "$RUNS/data-$flavor.cmd" data synth --flavor "$flavor" --out "$DATA" --images "$IMAGES" --size "$SIZE" --seed 0
  fi
  if [[ "$PARALLEL" == 1 ]]; then
    pids=()
    for model in "${MODELS[@]}"; do
      run_model "$model" "$flavor" &
      pids+=($!)
    done
    failed=0
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    [[ $failed == 0 ]] || die "[$flavor] a run failed (see $RUNS/*-$flavor/*.out)"
  else
    for model in "${MODELS[@]}"; do run_model "$model" "$flavor"; done
  fi
done

node dist/scripts/compare-table.js --runs "$RUNS" --out "$OUT" --data "$DATA" \
  --steps "$STEPS" --batch "$BATCH" --lr "$LR" --warmup "$WARMUP" --schedule "$SCHEDULE" --seed "$SEED" --clip "${CLIP:-off}" \
  --threads "$THREADS" --parallel "$PARALLEL" --images "$IMAGES" --size "$SIZE" \
  --eval-split "$EVAL_SPLIT" --eval-every "$EVAL_EVERY" --total-wall "$(( SECONDS - start ))"
