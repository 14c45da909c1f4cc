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
LOGGER = r"""
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
"""

#: Logs statistics, fills the file system holding ``<fill dir>`` to the last byte, then goes
#: on logging statistics and a few large artifacts. Every call that returned is recorded
#: (``acked``); every call that raised is counted by exception type. Exits 3.
FILLER = r"""
import errno, json, os, sys
from kleio.client.logger import kleio_logger as k

state, fill = sys.argv[1], sys.argv[2]
acked, artifacts, failures, errors = [], [], {}, []

def report(name, value):
    tmp = os.path.join(state, name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(value, handle)
    os.replace(tmp, os.path.join(state, name))

def failed(error):
    name = type(error).__name__
    failures[name] = failures.get(name, 0) + 1
    if len(errors) < 5:
        errors.append(repr(error))

def stat(i):
    try:
        k.log_statistic(i=i)
    except Exception as error:
        failed(error)
    else:
        acked.append(i)

i = 0
for _ in range(5000):
    stat(i)
    i += 1
fd = os.open(os.path.join(fill, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
for size in (1 << 16, 4096, 512, 1):
    while True:
        try:
            os.write(fd, b"\0" * size)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            break
os.close(fd)
for _ in range(30000):
    stat(i)
    i += 1
for j in range(4):
    try:
        k.log_artifact(f"big{j}.bin", bytes([j]) * 300_000, j=j)
    except Exception as error:
        failed(error)
    else:
        artifacts.append(j)
    for _ in range(2000):
        stat(i)
        i += 1
report("result", {"acked": acked, "artifacts": artifacts, "failures": failures,
                  "errors": errors})
sys.exit(3)
"""

#: Waits until the journal is locked (``<state>/locked`` exists), then makes ``n`` calls of
#: ``log_statistic``, printing ``lines`` lines among them, timing the slowest of each, and
#: reports ``{"n", "max_call", "max_print", "lock_held"}`` in ``<state>/done``. A watchdog
#: thread reports ``<state>/stuck`` as soon as one print has been waiting for 0.5 s.
LOCKED = r"""
import json, os, sys, threading, time
from kleio.client.logger import kleio_logger as k

state, n, lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
clock = time.perf_counter

def report(name, value):
    tmp = os.path.join(state, name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(value, handle)
    os.replace(tmp, os.path.join(state, name))

printing = [None]
finished = threading.Event()

def watchdog():
    while not finished.wait(0.01):
        since = printing[0]
        if since is not None and clock() - since > 0.5:
            report("stuck", {"stuck": clock() - since})
            return

report("ready", {"pid": os.getpid(), "trial": os.environ["KLEIO_TRIAL_ID"]})
deadline = time.monotonic() + 60
while not os.path.exists(os.path.join(state, "locked")):
    if time.monotonic() > deadline:
        sys.exit("the journal was never locked")
    time.sleep(0.002)
threading.Thread(target=watchdog, daemon=True).start()
log = k.log_statistic
slowest = slowest_print = 0.0
every = n // lines if lines else 0
for i in range(n):
    start = clock()
    log(i=i)
    took = clock() - start
    if took > slowest:
        slowest = took
    if every and i % every == 0:  # a line now and then: one read, one event each
        printing[0] = start = clock()
        print(f"line {i // every} of the program's output, under a locked journal",
              flush=True)
        printing[0] = None
        slowest_print = max(slowest_print, clock() - start)
finished.set()
report("done", {"n": n, "max_call": slowest, "max_print": slowest_print,
                "lock_held": not os.path.exists(os.path.join(state, "released"))})
"""

#: Tries oversized, deep and odd values; reports, per case, None when the call returned or
#: ``[exception type, message]`` when it raised, then what ``statistics()`` gave back.
ODD = r"""
import json, math, os, sys
from kleio.client.logger import MAX_DEPTH, kleio_logger as k

state = sys.argv[1]
limit = int(os.environ.get("KLEIO_MAX_STATISTIC_SIZE") or 1 << 20)
results = {}

def attempt(name, **values):
    try:
        k.log_statistic(case=name, **values)
    except Exception as error:
        results[name] = [type(error).__name__, str(error)]
    else:
        results[name] = None

def lists(depth):
    value = 0
    for _ in range(depth):
        value = [value]
    return value

def dicts(depth):
    value = 0
    for _ in range(depth):
        value = {"d": value}
    return value

attempt("over_limit", x="a" * limit)
attempt("under_limit", x="a" * (limit - 100))
attempt("deep_lists_at_limit", x=lists(MAX_DEPTH))
attempt("deep_lists_over", x=lists(MAX_DEPTH + 1))
attempt("deep_dicts_over", x=dicts(MAX_DEPTH + 1))
attempt("very_deep", x=lists(5000))
attempt("surrogate_value", x="bad \udcff byte")
attempt("surrogate_key", **{"k\ud800": 1})
attempt("nan", x=float("nan"))
attempt("inf", x=float("inf"), y=float("-inf"))
attempt("nested_non_finite", x={"a": [1, {"b": [float("inf"), float("nan")]}]})
attempt("big_int", x=2 ** 70, y=-(10 ** 30))
attempt("unicode", x="h\u00e9llo \u2713 \U0001f600", **{"\u043a\u043b\u044e\u0447": "z"})
attempt("control", x="nul \x00 esc \x1b[31m red\nnew line\rcr\ttab")
attempt("empty_key", **{"": 1})
attempt("long_key", **{"k" * 10000: 1})
attempt("none_bool", x=None, y=True, z=False)
attempt("brackets_in_text", x="[" * 100 + "{" * 100)
try:
    import numpy
except ImportError:
    pass
else:
    attempt("numpy", x=numpy.float32("nan"), y=numpy.int64(7), z=numpy.array(0.25))
artifacts = {}
for name, meta in [("meta_nan", {"m": float("nan")}), ("meta_deep", {"m": lists(MAX_DEPTH + 1)}),
                   ("meta_surrogate", {"m": "\udcff"})]:
    try:
        k.log_artifact(name + ".bin", name.encode(), **meta)
    except Exception as error:
        artifacts[name] = [type(error).__name__, str(error)]
    else:
        artifacts[name] = None
back = {s.get("case"): s for s in k.statistics()}
json.dump({"results": results, "artifacts": artifacts, "limit": limit,
           "back": sorted(str(c) for c in back),
           "nan_back": repr(back.get("nan", {}).get("x"))},
          open(os.path.join(state, "odd.json"), "w"))
"""

#: Reports its channel, waits until the test has attacked it (``<state>/attacked``), then
#: logs ten statistics of its own and checks it reads back exactly those.
VICTIM = r"""
import json, os, sys, time
from kleio.client.logger import kleio_logger as k

state = sys.argv[1]
tmp = os.path.join(state, "ready.tmp")
with open(tmp, "w") as handle:
    json.dump({"pid": os.getpid(), "trial": os.environ["KLEIO_TRIAL_ID"],
               "channel": os.environ["KLEIO_CHANNEL"]}, handle)
os.replace(tmp, os.path.join(state, "ready"))
deadline = time.monotonic() + 60
while not os.path.exists(os.path.join(state, "attacked")):
    if time.monotonic() > deadline:
        sys.exit("never attacked")
    time.sleep(0.005)
for i in range(10):
    k.log_statistic(mine=i)
assert k.statistics() == [{"mine": i} for i in range(10)], k.statistics()
"""

#: Forks ``workers`` processes that each log ``w=<n>, i=0, 1, 2 ...`` as fast as they can,
#: reporting ``<state>/acked-<n>`` (the next i) after every thousand calls and their pids in
#: ``<state>/workers``; the parent waits for them.
WORKERS = r"""
import json, os, sys
from kleio.client.logger import kleio_logger as k

state, workers = sys.argv[1], int(sys.argv[2])

def report(name, value):
    tmp = os.path.join(state, f"{name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(value, handle)
    os.replace(tmp, os.path.join(state, name))

k.log_statistic(parent=os.getpid())  # the parent's own ledger file, before any fork
pids = []
for w in range(workers):
    pid = os.fork()
    if pid == 0:
        i = 0
        while True:
            for _ in range(1000):
                k.log_statistic(w=w, i=i)
                i += 1
            report(f"acked-{w}", i)
    pids.append(pid)
report("workers", {"pids": pids, "parent": os.getpid(), "trial": os.environ["KLEIO_TRIAL_ID"]})
for _ in pids:
    os.wait()
"""
