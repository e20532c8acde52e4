#!/usr/bin/env bash
# How the initial entries were made (run from the repository root; each line is independent).
# Baselines need only the shipped base policies; trained entries need a `prefgym train` run first.
set -euo pipefail
PY=${PY:-.venv/bin/python}
LB="$PY -m prefgym.cli leaderboard"
OUT=${OUT:-outputs/leaderboard}
who="prefgym maintainers"

baselines() {  # board
  $LB evaluate "$1" --name base-policy --base --submitter "$who" --out "$OUT/$1/base-policy.json" \
    --description "the shipped base policy, sampled as is" --submit --replace
  if grep -q "uniform" "leaderboards/$1/protocol.yaml"; then
    $LB evaluate "$1" --name random --base --method uniform --submitter "$who" --out "$OUT/$1/random.json" \
      --description "uniformly random tokens (agents/random_baseline.py)" --submit --replace
    $LB evaluate "$1" --name best-of-4 --base --method best_of_n --n 4 --submitter "$who" \
      --out "$OUT/$1/best-of-4.json" --description "best of 4 base-policy samples by the env's score (agents/best_of_n.py)" \
      --submit --replace
  fi
}

trained() {  # board agent [extra train overrides...]
  local board=$1 agent=$2 env=${1%-*}
  shift 2
  local run="outputs/leaderboard-runs/$board-$agent"
  # policy=tiny-code: the v1 base every board's protocol pins (prefgym train defaults to tiny-code-v2)
  [ -d "$run/checkpoints" ] || $PY -m prefgym.train agent="$agent" env="$env" policy=tiny-code logger=local \
    eval.enabled=false hydra.run.dir="$run" "$@"
  $LB evaluate "$board" --name "$agent" --run-dir "$run" --submitter "$who" --out "$OUT/$board/$agent.json" \
    --description "prefgym train agent=$agent env=$env $*" --submit --replace
}

# sweep dir of `prefgym pretrain pretrain_experiment=phf_pep8 policy=tiny-code` (one subfolder per
# objective; the board's protocol pins the v1 base, the experiment now defaults to tiny-code-v2)
phf() {
  for model in "$1"/*/model; do
    local objective
    objective=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['prefgym_objective'])" "$model/config.json")
    $LB evaluate phf-pep8 --name "phf-$objective" --weights "$model/model.safetensors" --submitter "$who" \
      --out "$OUT/phf-pep8/phf-$objective.json" --submit --replace \
      --description "prefgym pretrain pretrain_experiment=phf_pep8 (objective=$objective)"
  done
}

"$@"

