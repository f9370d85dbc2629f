#!/usr/bin/env bash
# The README's cluster word count with the master killed (kill -9) in the middle of the job and
# restarted: the output must equal a sequential count of the input.  Only the README's commands
# (`mapred cluster up`, `mapred fs put`, `mapred run --master`, `mapred job list`, `mapred cluster
# down`) plus `mapred cluster restart-master`, as a user would type them.
#
#     scripts/readme_master_kill.sh [SEED] [MB]      # defaults: seed 1, a 48 MB input
#
# Exit status 0 when the output is exact and nothing is left running; the steps are printed.
set -euo pipefail
SEED=${1:-1}
MB=${2:-48}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
MAPRED="python -m mapred"
W=$(mktemp -d /tmp/mapred-readme-kill.XXXXXX)
D="$W/mr"
RUN_PID=""
cleanup() {
    [ -n "$RUN_PID" ] && kill "$RUN_PID" 2>/dev/null || true
    [ -f "$D/cluster.json" ] && $MAPRED cluster down --dir "$D" >/dev/null 2>&1 || true
}
trap cleanup EXIT
say() { echo "+ $*" >&2; }

# an input of MB megabytes: the README's example text with seeded word noise, several blocks
python - "$W/big.txt" "$MB" "$SEED" "$ROOT/examples/data" <<'EOF'
import os, random, sys
out, mb, seed, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
base = [l for n in sorted(os.listdir(data)) for l in open(os.path.join(data, n)).read().split("\n") if l.strip()]
with open(out, "w") as f:
    while f.tell() < mb << 20:
        f.write(rng.choice(base) + " " + " ".join(f"w{rng.randrange(5000)}" for _ in range(rng.randrange(6))) + "\n")
EOF

say mapred cluster up --workers 3 --datanodes 3 --dir "$D" --block-size 4194304
UP=$($MAPRED cluster up --workers 3 --datanodes 3 --dir "$D" --block-size 4194304)
echo "$UP" >&2
MASTER=$(echo "$UP" | awk '$1 == "master" {print $2}')
NN=$(echo "$UP" | awk '$1 == "namenode" {print $2}')

say mapred fs --namenode "$NN" put big.txt /data/big.txt
$MAPRED fs --namenode "$NN" mkdir /data
$MAPRED fs --namenode "$NN" put "$W/big.txt" /data/big.txt

say mapred run examples/wordcount.py "$NN/data" -o "$NN/out" --master "$MASTER" -q "&"
$MAPRED run "$ROOT/examples/wordcount.py" "$NN/data" -o "$NN/out" --master "$MASTER" -q \
    >"$W/run.out" 2>"$W/run.err" &
RUN_PID=$!

# kill -9 the master at a seeded point of the job, once a seeded fraction of its tasks is done
# (watched through the Python client, polling every 50 ms: `mapred job list` is too slow to aim with)
FRACTION=$(python -c "import random; print(round(random.Random($SEED).uniform(0.0, 0.7), 2))")
WATCH='import json, os, signal, sys, time
import mapred
master, fraction, state_file = sys.argv[1], float(sys.argv[2]), sys.argv[3]
client = mapred.connect(master)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    jobs = client.jobs()
    if jobs:
        state, p = jobs[0]["state"], jobs[0]["progress"]
        if state not in ("SUBMITTED", "MAPPING", "REDUCING"):
            sys.exit("the job ended before the kill (" + state + "); give a larger MB")
        done, total = p.get("maps_done", 0) + p.get("reduces_done", 0), p.get("maps", 0) + p.get("reduces", 0)
        if state != "SUBMITTED" and done >= fraction * total:
            pid = json.load(open(state_file))["master_pid"]
            os.kill(pid, signal.SIGKILL)
            print("kill -9 %d (the master) at %s, %d of %d tasks done" % (pid, state, done, total))
            os._exit(0)
    time.sleep(0.05)
sys.exit("the job never reached the point to kill at")'
say "kill -9 the master once ${FRACTION} of the job's tasks are done"
LINE=$(python -c "$WATCH" "$MASTER" "$FRACTION" "$D/cluster.json")
say "$LINE"
sleep 1
say mapred cluster restart-master --dir "$D"
$MAPRED cluster restart-master --dir "$D" >&2

say "wait for mapred run"
if ! wait "$RUN_PID"; then RUN_PID=""; cat "$W/run.err" >&2; echo "FAILED: mapred run exited non-zero" >&2; exit 1; fi
RUN_PID=""
say mapred job list; $MAPRED job --master "$MASTER" list >&2

# the output, read back from the store, against a sequential count of the input
for part in $($MAPRED fs --namenode "$NN" ls /out | awk '{print $NF}' | grep -o 'part-[0-9]*'); do
    $MAPRED fs --namenode "$NN" cat "/out/$part"
done | sort >"$W/got.txt"
python - "$W/big.txt" <<'EOF' | sort >"$W/want.txt"
import collections, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    c.update(line.split())
for w, n in c.items():
    print(f"{w}\t{n}")
EOF
if cmp -s "$W/got.txt" "$W/want.txt"; then
    echo "EXACT: $(wc -l <"$W/got.txt") words equal the sequential count after a master kill -9 mid-job ($LINE)"
else
    echo "DIFFERENT: $(diff "$W/got.txt" "$W/want.txt" | grep -c '^[<>]') lines differ" >&2
    exit 1
fi
say mapred cluster down --dir "$D"
$MAPRED cluster down --dir "$D" >&2
LEFT=$(pgrep -f "$D" || true)
if [ -n "$LEFT" ]; then echo "processes left running: $LEFT" >&2; exit 1; fi
rm -rf "$W"
