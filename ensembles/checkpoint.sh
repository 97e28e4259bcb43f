#!/usr/bin/env bash
# Stage what lets an ensemble in progress continue on another machine (ensembles/README.md):
# for a complete run its output file and state.json; for an unfinished run that has done at
# least one model year, its state.json, last restart file (and snow file) and last two
# post-processed years (the equilibrium check reads them). Files of complete runs' working directories are unstaged.
# Usage: ensembles/checkpoint.sh ensembles/exoplasim32/out   (then git commit)
set -euo pipefail
out=${1:?usage: $0 ENSEMBLE_OUT_DIR}
py=${PYTHON:-.venv/bin/python}
for state in "$out"/runs/*/state.json; do
  rdir=$(dirname "$state"); run=$(basename "$rdir")
  read -r status years < <("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"], d["years_done"])' "$state")
  if [ "$status" = complete ] || [ "$status" = failed ]; then
    [ "$status" = complete ] && git add -f "$out/$run.nc"
    git add -f "$state"
    git rm -r -q --cached --ignore-unmatch "$rdir/model" >/dev/null
  elif [ "$years" -gt 0 ]; then
    last=$(printf '%05d' $((years - 1)))
    git rm -r -q --cached --ignore-unmatch "$rdir/model" >/dev/null
    git add -f "$state" "$rdir/model/MOST_REST.$last" "$rdir/model/MOST.$last.nc"
    if [ "$years" -gt 1 ]; then
      git add -f "$rdir/model/MOST.$(printf '%05d' $((years - 2))).nc"
    fi
    [ -f "$rdir/model/MOST_SNOW.$last" ] && git add -f "$rdir/model/MOST_SNOW.$last"
  fi
  echo "$run: $status, $years years"
done
