#!/usr/bin/env bash
# End to end on a real Slurm cluster: a one-node slurmctld + slurmd with
# munge on localhost (tests/slurm/cluster.sh).  A generated glove scenario
# runs night by night through `nightshift slurm submit`; the store, the
# detect results and each night's exit code must equal those of `nightshift
# nightly` on the same data.  Then one ingest array task is cancelled mid-way
# (scancel): the chain stops, and submitting the night again completes it
# with nothing lost or stored twice.  Skips (77) with the reason where the
# daemons cannot start.
source "$(dirname "$0")/../e2e/lib.sh"
source "$(dirname "$0")/cluster.sh"

trap 'slurm_stop' EXIT
if ! slurm_start "$T/cluster"; then
  echo "skip: no Slurm cluster: $slurm_why"
  rm -rf "$T"
  exit 77
fi
echo "# cluster up: $(sinfo -h -o '%P %a %D %T' | tr '\n' ' ')"

data=$T/data
"$NS_GEN" glove --out "$data" --nights 5 --cameras 2 --clips 4 --frames 10 --seed 21 \
  --shift glove:5:cam01 >/dev/null
mapfile -t nights < <(ls "$data" | grep -E '^[0-9]{4}-' | sort)

config() { # STORE -> a nightly config on stdout
  cat <<YAML
store: $1
inbox: $data/{night}
manifest: $data/manifest.csv
reference:
  policy: fixed
  nights: ${nights[0]}..${nights[2]}
YAML
}
config "$T/one" >"$T/one.yaml"
config "$T/sl" >"$T/sl.yaml"

# The store's clips, the detect results and the night's exit code, as text.
night_state() { # STORE NIGHT
  $PY - "$1" "$2" <<'PY'
import h5py, json, os, sys, glob
store, night = sys.argv[1:3]
with h5py.File(store + "/catalog.h5", "r") as c:
    for r in sorted((r["sha256"].decode(), r["night"].decode(), int(r["n_frames"]))
                    for r in c["clips"][:]):
        print("clip", *r)
m = json.load(open(f"{store}/runs/{night}/manifest.json"))
print("exit", m["exit_code"])
for s in m["stages"]:
    print("stage", s["stage"], s["status"], s.get("verdict", ""))
for f in sorted(glob.glob(f"{store}/runs/detect/{night}/detect.h5")):
    with h5py.File(f, "r") as d:
        a = d.attrs
        print("detect", a["p_value"], a["n_novel"], a["shift"], a["clips_tonight"], a["frames_tonight"])
PY
}

submit() { # NIGHT [extra args]: submits, prints the job ids "name id" to $T/jobs.NIGHT
  local n=$1; shift
  "$NS_BIN" slurm submit --config "$T/sl.yaml" --night "$n" --tasks 3 --cpus-per-task 1 \
    --partition cpu --gpu-partition gpu "$@" >"$T/jobs.$n"
}
jobs_of() { awk '{print $2}' "$T/jobs.$1"; }

expect_rc 0 "slurm submit --print writes the scripts and submits nothing" \
  "$NS_BIN" slurm submit --config "$T/sl.yaml" --night "${nights[0]}" --tasks 3 --print \
  --partition cpu --gpu-partition gpu
check "...four scripts, the arrays and the afterok chain's commands in them" sh -c "
  ls '$T/sl/runs/${nights[0]}/slurm/'*.sbatch | wc -l | grep -qx 4 &&
  grep -q -- '--array=0-2' '$T/sl/runs/${nights[0]}/slurm/1-ingest.sbatch' &&
  grep -q -- 'ingest .*--task slurm' '$T/sl/runs/${nights[0]}/slurm/1-ingest.sbatch' &&
  grep -q -- 'embed .*--task slurm' '$T/sl/runs/${nights[0]}/slurm/2-embed.sbatch' &&
  grep -q -- '--partition=gpu' '$T/sl/runs/${nights[0]}/slurm/2-embed.sbatch' &&
  grep -q -- 'nightly .*--until detect' '$T/sl/runs/${nights[0]}/slurm/3-detect.sbatch'"
check "no job was submitted by --print" sh -c "[ -z \"\$(squeue -h)\" ]"

for i in "${!nights[@]}"; do
  n=${nights[$i]}
  if [ "$i" -eq 3 ]; then
    # This night: one ingest task is cancelled while it runs.  The test holds
    # the catalog lock, so every task stops at its first commit with its
    # clips read; task 1 is cancelled there, then the lock is let go.
    $PY -c "
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[2], 'w').close()
while not os.path.exists(sys.argv[3]): time.sleep(0.05)
" "$T/sl/catalog.lock" "$T/held" "$T/release" &
    holder=$!
    for _ in $(seq 100); do [ -f "$T/held" ] && break; sleep 0.05; done
    submit "$n"
    ingest_job=$(awk '$1 == "ingest" {print $2}' "$T/jobs.$n")
    for _ in $(seq 600); do
      squeue -h -j "${ingest_job}_1" -t R -o %i | grep -q . && break
      sleep 0.1
    done
    sleep 1
    scancel "${ingest_job}_1"
    sleep 1
    touch "$T/release"
    wait $holder
    slurm_wait $(jobs_of "$n")
    states=$(for j in $(jobs_of "$n"); do slurm_state "$j"; done | sort | uniq -c | tr -s ' ' | tr '\n' ';')
    echo "# night $n after scancel: $states"
    check "night $n: the cancelled task stops the chain ($states)" \
      sh -c "echo '$states' | grep -q CANCELLED"
    expect_rc 0 "night $n: submitted again" submit "$n"
  else
    expect_rc 0 "night $n: submitted" submit "$n"
  fi
  check "night $n: every job completes" slurm_wait $(jobs_of "$n")
  bad=$(for j in $(jobs_of "$n"); do slurm_state "$j"; done | grep -vc COMPLETED || true)
  check "night $n: all jobs COMPLETED ($bad not)" [ "$bad" -eq 0 ]
  rc=0; "$NS_BIN" nightly --config "$T/one.yaml" --night "$n" >"$T/one.$n.log" 2>&1 || rc=$?
  echo "# nightly on one machine: night $n exit $rc"
  night_state "$T/one" "$n" >"$T/one.$n.state"
  night_state "$T/sl" "$n" >"$T/sl.$n.state"
  [ "$i" -lt 3 ] || check "night $n: a detect result to compare" grep -q "^detect" "$T/sl.$n.state"
  check "night $n: store, detect results and exit code equal nightly's" \
    diff "$T/one.$n.state" "$T/sl.$n.state"
  expect_rc 0 "night $n: verify passes" "$NS_BIN" verify --store "$T/sl"
done
check "the glove night is a shift on the cluster too (3, or 4 with a labeling batch)" \
  grep -qE '^exit (3|4)' "$T/sl.${nights[4]}.state"

# Retrain and gate on the cluster: labels arrive in both stores, the night is
# submitted again, and the candidate, the gate's verdict and the exit code
# must equal nightly's.  First the labels of nights 1-2 (a candidate, no
# production yet: promoted by hand), then those of nights 3-5 (gated).
last=${nights[4]}
labels_of() { # FROM TO OUT: the generator's labels of those nights
  $PY "$NS_SRC/tools/labels_of_nights.py" "$data/labels.csv" "$1" "$2" "$3"
}
# Few test clips: decide on overall accuracy, as e2e_nightly's policy does.
printf 'margin.camera = off\nmargin.class = off\nece_margin = 0.5\nmin_frames = 10\n' >"$T/policy.txt"
for y in one sl; do printf 'gate: {policy: %s}\n' "$T/policy.txt" >>"$T/$y.yaml"; done
# The registry as text, times and content ids masked.  The cluster's ingest
# tasks write a night as 3 shards, nightly here as one, and embed batches
# the frames of a shard: other batches give other sgemm shapes, which change
# the embeddings in their last bits (up to 7e-8 here; the thread count does
# not, e2e_embed), so the datasets' and heads' content ids differ while
# everything they are made of is the same.
heads() { # STORE
  "$NS_BIN" registry list --store "$1" 2>&1 | sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]+Z?//g;
    s/[0-9a-f]{64}/ID/g; s/(add|promote|rollback) +[0-9a-f]{12}/\1 ID/g; s/dataset [0-9a-f]{12}/dataset ID/g'
}
# The retraining sets of both: the same frames, labels and splits, the
# embeddings equal to float rounding.
same_datasets() {
  $PY - "$T/one/runs/datasets" "$T/sl/runs/datasets" <<'PY'
import glob, sys, h5py, numpy as np
def sets(d):
    out = {}
    for p in glob.glob(d + "/*.h5"):
        f = h5py.File(p, "r")
        key = tuple(c.decode() for c in f["frames/clip"][:]), tuple(f["frames/index"][:])
        out[key] = f
    return out
a, b = sets(sys.argv[1]), sets(sys.argv[2])
assert a.keys() == b.keys() and a, (len(a), len(b))
for k, fa in a.items():
    fb = b[k]
    assert np.array_equal(fa["labels"][:], fb["labels"][:]) and np.array_equal(fa["split"][:], fb["split"][:])
    assert np.abs(fa["embeddings"][:] - fb["embeddings"][:]).max() < 1e-5
PY
}
round=0
for spec in "${nights[0]} ${nights[1]} first" "${nights[2]} ${nights[4]} more"; do
  set -- $spec
  round=$((round + 1))
  labels_of "$1" "$2" "$T/labels-$3.csv"
  for y in one sl; do
    "$NS_BIN" labels import --store "$T/$y" --set "$3" "$T/labels-$3.csv" >>"$T/labels.log" 2>&1
  done
  expect_rc 0 "labels round $round: submitted again" submit "$last"
  check "labels round $round: every job completes" slurm_wait $(jobs_of "$last")
  rc=0; "$NS_BIN" nightly --config "$T/one.yaml" --night "$last" >"$T/one.r$round.log" 2>&1 || rc=$?
  echo "# nightly on one machine, labels round $round: exit $rc"
  night_state "$T/one" "$last" >"$T/one.r$round.state"
  night_state "$T/sl" "$last" >"$T/sl.r$round.state"
  check "labels round $round: a train stage ran on the cluster" grep -q '^stage train done' "$T/sl.r$round.state"
  check "labels round $round: store, stages, gate verdict and exit code equal nightly's" \
    diff "$T/one.r$round.state" "$T/sl.r$round.state"
  check "labels round $round: the same registry entries, aliases and lineage" \
    diff <(heads "$T/one") <(heads "$T/sl")
  check "labels round $round: the same retraining sets (frames, labels, splits)" same_datasets
  if [ $round -eq 1 ]; then
    for y in one sl; do
      "$NS_BIN" registry promote candidate --store "$T/$y" --force --reason "first head" >/dev/null
    done
  fi
done
echo "# gate on the cluster: $(grep '^stage gate' "$T/sl.r2.state")"
check "the gate ran and gave a verdict on the cluster" grep -qE '^stage gate done (promote|reject|insufficient)' "$T/sl.r2.state"
finish
