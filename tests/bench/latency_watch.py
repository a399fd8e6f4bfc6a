#!/usr/bin/env python3
"""Two watches for tests/bench/status_latency.sh, timed by one clock.

    latency_watch.py watch KUBECTL MAPPLY_NAMESPACE TARGET_NAMESPACE OUT
    latency_watch.py stats OUT EXPECTED
    latency_watch.py split OUT EXPECTED AGENT_LOG...
    latency_watch.py hops OUT EXPECTED OPERATOR_LOG AGENT_LOG...

Follows the ConfigMaps in TARGET_NAMESPACE (what the agents deliver) and
the MaestroApply objects in MAPPLY_NAMESPACE with `kubectl get --watch`,
and appends to OUT, with the wall-clock time each event reached this
process:

    cm NAME TIME            the first event for a ConfigMap name
    ready NAME GEN TIME     the first event showing Ready=True with
                            status.observedGeneration == metadata.generation
                            (GEN), once per object and generation

Both watches are read by this one process, so the difference between two
times does not depend on the servers' clocks or on creationTimestamp's
one-second resolution. A watch that ends (the API server closes watches
after a while) is started again; names already seen are not repeated.

`stats` reads EXPECTED, lines of "OBJECT CONFIGMAP GENERATION", and prints
the latency of each object's Ready (at GENERATION) after its ConfigMap
appeared: "n=N p50=S p90=S p99=S max=S missing=M" (seconds, nearest-rank
percentiles; missing: objects without both times).

`hops` splits "to-ready" further when the operator ran with
RUST_LOG=...,maestro_operator::controller::stream=debug,
maestro_operator::controller::run=debug: the agent's report is followed
by its sequence ID to the moment the operator's stream received it, then
to the operator's next "reconciled" line for the object (its status patch
done), then to Ready seen by the watch: "maestro: ...; operator: ...;
watch: ...".

`split` divides that latency at the agent's last status report for the
object's bundle version (GENERATION, the same number while each change
is one publish) sent before Ready, from the agents' logs ("Sending event"
of a status update_request, the work labelled with the owner's name; klog
local time on the same clock): "agent: ..." (ConfigMap seen -> agent
sends its report) and "to-ready: ..." (report sent -> Ready seen: Maestro,
the stream, the operator, its status patch and the watch).
"""

import calendar
import re
import subprocess
import sys
import threading
import time

# `kubectl get --watch` prints its initial list as List objects, which a
# jsonpath template for single objects cannot read; so the watch runs with
# --watch-only and, once it is up, a plain list (with a range template)
# reads what already exists. Each name is recorded once, at whichever
# arrives first.
MAPPLY_FIELDS = (
    '{.metadata.name} {.metadata.generation} {.status.observedGeneration} '
    '{.status.conditions[?(@.type=="Ready")].status}{"\\n"}'
)
CM_FIELDS = '{.metadata.name}{"\\n"}'


def follow(kubectl, args, fields, handle):
    while True:
        proc = subprocess.Popen(
            [kubectl, "get", "--watch-only", *args, "-o", "jsonpath=" + fields],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=list_once, args=(kubectl, args, fields, handle), daemon=True).start()
        for line in proc.stdout:
            handle(time.time(), line.split())
        proc.wait()
        time.sleep(0.2)


def list_once(kubectl, args, fields, handle):
    time.sleep(1)
    listed = subprocess.run(
        [kubectl, "get", *args, "-o", "jsonpath={range .items[*]}" + fields + "{end}"],
        capture_output=True,
        text=True,
    )
    now = time.time()
    for line in listed.stdout.splitlines():
        handle(now, line.split())


def percentile(sorted_values, p):
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def read_events(out_path):
    cm, ready = {}, {}
    with open(out_path) as f:
        for line in f:
            fields = line.split()
            if fields[0] == "cm":
                cm[fields[1]] = float(fields[2])
            elif fields[0] == "ready":
                ready[(fields[1], fields[2])] = float(fields[3])
    return cm, ready


def stats(out_path, expected_path):
    cm, ready = read_events(out_path)
    latencies, missing = [], 0
    with open(expected_path) as f:
        for line in f:
            name, configmap, generation = line.split()
            if configmap in cm and (name, generation) in ready:
                latencies.append(ready[(name, generation)] - cm[configmap])
            else:
                missing += 1
    latencies.sort()
    if not latencies:
        print(f"n=0 missing={missing}")
        return
    figures = " ".join(
        f"p{p}={percentile(latencies, p):.2f}s" for p in (50, 90, 99)
    )
    print(f"n={len(latencies)} {figures} max={latencies[-1]:.2f}s min={latencies[0]:.2f}s missing={missing}")


AGENT_SEND = re.compile(
    r'^I(\d{4}) (\d\d:\d\d:\d\d\.\d+) .*"Sending event" '
    r'eventType="[^"]*status\.update_request".*owner-name\\":\\"([^\\"]+)\\".*"resourceversion":(\d+)'
)
SEQUENCE = re.compile(r'"sequenceid":"(\d+)"')


def klog_time(day, clock):
    year = time.gmtime().tm_year
    stamp = calendar.timegm(time.strptime(f"{year}{day} {clock.split('.')[0]}", "%Y%m%d %H:%M:%S"))
    return stamp + float("0." + clock.split(".")[1])


def agent_sends(paths):
    """(owner, version) -> [(time, sequence ID or None)] of the agents'
    status reports."""
    sends = {}
    for path in paths:
        with open(path, errors="replace") as f:
            for line in f:
                if "Sending event" not in line:
                    continue
                m = AGENT_SEND.match(line)
                if not m:
                    continue
                day, clock, owner, version = m.groups()
                seq = SEQUENCE.search(line)
                sends.setdefault((owner, version), []).append(
                    (klog_time(day, clock), seq.group(1) if seq else None))
    return sends


def describe(values):
    values.sort()
    if not values:
        return "n=0"
    figures = " ".join(f"p{p}={percentile(values, p):.2f}s" for p in (50, 90, 99))
    return f"n={len(values)} {figures} max={values[-1]:.2f}s"


def split(out_path, expected_path, logs):
    cm, ready = read_events(out_path)
    sends = agent_sends(logs)
    agent, to_ready = [], []
    with open(expected_path) as f:
        for line in f:
            name, configmap, generation = line.split()
            r = ready.get((name, generation))
            c = cm.get(configmap)
            before = [t for t, _ in sends.get((name, generation), []) if r is not None and t <= r]
            if r is None or c is None or not before:
                continue
            agent.append(max(before) - c)
            to_ready.append(r - max(before))
    print(f"agent: {describe(agent)}; to-ready: {describe(to_ready)}")


OPERATOR_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z ")
STREAM_EVENT = re.compile(r'status event .*sequence_id="?(\d+)')
RECONCILED = re.compile(r"reconciled object=\S+/(\S+)$")


def operator_times(path):
    """When the operator received each sequence ID on its stream, and the
    times of its "reconciled" lines per object name."""
    received, reconciled = {}, {}
    with open(path, errors="replace") as f:
        for line in f:
            t = OPERATOR_LINE.match(line)
            if not t:
                continue
            stamp = calendar.timegm(time.strptime(t.group(1), "%Y-%m-%dT%H:%M:%S"))
            stamp += float(t.group(2) or 0)
            event = STREAM_EVENT.search(line)
            if event:
                received.setdefault(event.group(1), stamp)
                continue
            done = RECONCILED.search(line.rstrip())
            if done:
                name = done.group(1).rsplit(".", 1)[0]
                reconciled.setdefault(name, []).append(stamp)
    return received, reconciled


def hops(out_path, expected_path, operator_log, logs):
    _, ready = read_events(out_path)
    sends = agent_sends(logs)
    received, reconciled = operator_times(operator_log)
    maestro, operator, watch, skipped = [], [], [], 0
    with open(expected_path) as f:
        for line in f:
            name, _, generation = line.split()
            r = ready.get((name, generation))
            before = [s for s in sends.get((name, generation), []) if r is not None and s[0] <= r]
            if not before:
                skipped += 1
                continue
            sent, sequence = max(before, key=lambda s: s[0])
            got = received.get(sequence)
            done = [t for t in reconciled.get(name, []) if got is not None and got <= t <= r]
            if got is None or not done:
                skipped += 1
                continue
            maestro.append(got - sent)
            operator.append(done[0] - got)
            watch.append(r - done[0])
    print(f"maestro: {describe(maestro)}; operator: {describe(operator)}; "
          f"watch: {describe(watch)}; not followed: {skipped}")


def main():
    if sys.argv[1] == "hops":
        hops(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
        return
    if sys.argv[1] == "split":
        split(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    if sys.argv[1] == "stats":
        stats(sys.argv[2], sys.argv[3])
        return
    kubectl, mapply_ns, target_ns, out_path = sys.argv[2:6]
    out = open(out_path, "a", buffering=1)
    lock = threading.Lock()
    seen_cm = set()
    seen_ready = set()

    def on_cm(now, fields):
        if not fields:
            return
        with lock:
            if fields[0] not in seen_cm:
                seen_cm.add(fields[0])
                out.write(f"cm {fields[0]} {now:.6f}\n")

    def on_mapply(now, fields):
        if len(fields) < 4:
            return
        name, generation, observed, ready = fields[:4]
        key = (name, generation)
        if ready != "True" or observed != generation:
            return
        with lock:
            if key not in seen_ready:
                seen_ready.add(key)
                out.write(f"ready {name} {generation} {now:.6f}\n")

    threads = [
        threading.Thread(
            target=follow,
            args=(kubectl, ["-n", target_ns, "configmaps"], CM_FIELDS, on_cm),
            daemon=True,
        ),
        threading.Thread(
            target=follow,
            args=(kubectl, ["-n", mapply_ns, "maestroapplies"], MAPPLY_FIELDS, on_mapply),
            daemon=True,
        ),
    ]
    for t in threads:
        t.start()
    out.write(f"started {time.time():.6f}\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
