"""The programs the fault suite runs under kleio, written into the test's repository.

Each reports what it was told was logged (the calls that *returned*) through small files
replaced atomically, so the test can poll them and never reads a torn count.
"""

from __future__ import annotations

#: Logs statistics ``i = 0, 1, 2 ...`` as fast as it can (and, with ``artifacts``, an artifact
#: ``j`` after every hundredth statistic), reporting ``{"i": next i, "j": next j}`` in
#: ``<state>/acked`` after every thousand statistics. A first run logs until it is killed;
#: a resumed run (it finds statistics of an earlier run) goes on from the last one journalled,
#: checks the artifacts it can load, logs ``RESUMED_EXTRA`` more statistics and exits 0.
LOGGER = r'''
import json, os, sys
from kleio.client.logger import kleio_logger as k

state, mode = sys.argv[1], sys.argv[2]
RESUMED_EXTRA = 3000

def report(name, value):
    tmp = os.path.join(state, name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(value, handle)
    os.replace(tmp, os.path.join(state, name))

def payload(j):
    return (f"artifact {j};" * (50 + j % 97)).encode()

earlier = [s["i"] for s in k.statistics() if "i" in s]
start = max(earlier) + 1 if earlier else 0
resumed = bool(earlier)
if resumed:
    acked = json.load(open(os.path.join(state, "acked"))) if os.path.exists(
        os.path.join(state, "acked")) else {"j": 0}
    checked = []
    for j in sorted({0, acked["j"] // 2, acked["j"] - 1}):
        if not 0 <= j < acked["j"]:
            continue
        found = k.load_artifact(f"a{j}.bin", j=j)
        checked.append([j, found is not None and found[0].read() == payload(j)
                        and found[1] == {"j": j}])
    report("loaded", checked)
report("started", {"pid": os.getpid(), "trial": os.environ["KLEIO_TRIAL_ID"],
                   "start": start, "resumed": resumed})
i, j = start, start // 100
stop = start + RESUMED_EXTRA if resumed else float("inf")
log = k.log_statistic
while i < stop:
    for _ in range(1000):
        log(i=i)
        i += 1
        if mode == "artifacts" and i % 100 == 0:
            k.log_artifact(f"a{j}.bin", payload(j), j=j)
            j += 1
    report("acked", {"i": i, "j": j})
report("done", {"i": i, "j": j})
'''
