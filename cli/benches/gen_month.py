"""A month of one robot, for measuring `perf-metrics export` and `report` on large inputs.

python3 cli/benches/gen_month.py DIR   (DIR must exist; about 1.6 GB, a few minutes)

10 M robot_activity_data rows (4 services x 5 threads, each thread's spans in sequence),
robot_activity_context_data from row 2 M on (as if an older drainer wrote the first 2 M),
and 2.6 M system_resource_data rows (10 commands every 10 s for 30 days, each restarted
every 3 days). Seeded: the same files every time.
"""
import random, sys
random.seed(15)
out = sys.argv[1]
N = 10_000_000
CTX_FROM = 2_000_000
states = ["RUNNING_PROTOCOL","ANALYZING_PROTOCOL","GETTING_CACHED_ANALYSIS","CALIBRATING","ROBOT_STARTING_UP","ROBOT_SHUTTING_DOWN"]
services = [("robot-server", 1201), ("protocol-analyzer", 1302), ("hardware-controller", 1403), ("system-server", 1504)]
t0 = 1_790_000_000_000_000_000
month = 30 * 86400 * 10**9
step = month // N
# per thread clock: each thread's spans are sequential
threads = [(s, pid, pid + k) for (s, pid) in services for k in range(5)]
clock = {t: t0 for t in threads}
with open(f"{out}/robot_activity_data", "w", newline="") as d, open(f"{out}/robot_activity_context_data", "w", newline="") as c:
    db, cb = [], []
    for i in range(N):
        th = threads[i % len(threads)]
        st = states[(i * 7) % len(states)] if i % 10 else "GETTING_CACHED_ANALYSIS"
        start = clock[th] + random.randrange(1000, 50_000)
        dur = random.randrange(1000, step * len(threads) // 2)
        clock[th] = start + dur
        db.append(f'"{st}","{start}","{dur}"\r\n')
        if i >= CTX_FROM:
            cb.append(f'"{st}","{start}","{dur}","{th[0]}","{th[1]}","{th[2]}"\r\n')
        if len(db) >= 100_000:
            d.write("".join(db)); c.write("".join(cb)); db.clear(); cb.clear()
    d.write("".join(db)); c.write("".join(cb))
with open(f"{out}/system_resource_data", "w", newline="") as r:
    buf = []
    cmds = [f"python3 -m opentrons.service{k} --flag" for k in range(10)]
    cpu = [0.0] * 10
    since = [1_790_000_000.0] * 10
    for n in range(30 * 8640):
        t = t0 + n * 10 * 10**9
        for k, cmd in enumerate(cmds):
            if n % (3 * 8640) == 0 and n:
                since[k] = t / 1e9; cpu[k] = 0.0
            cpu[k] += random.random() * 0.5
            buf.append(f'"{t}","{cmd}","{since[k]!r}","{cpu[k]!r}","{cpu[k]/4!r}","{1.5 + random.random()!r}"\r\n')
        if len(buf) >= 100_000:
            r.write("".join(buf)); buf.clear()
    r.write("".join(buf))
