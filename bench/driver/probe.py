"""probe.py OUT [--cgroup PATH]... [--server-cgroup PATH] -- CMD ARGS...

Runs a benchmark client and records, around exactly its lifetime, the CPU
time the proxy's cgroups used, the servers' cgroup used, and the client
itself used. It is the command `sockgate run` starts, so the proxy's
start-up (BPF load, verifier) and teardown stay outside the figure. Writes
JSON to OUT; the client's stdout and stderr go to OUT.stdout and
OUT.stderr. Exits with the client's status.
"""
import json
import resource
import subprocess
import sys
import time


def usage_usec(cgroup):
    for line in open(cgroup + "/cpu.stat"):
        k, v = line.split()
        if k == "usage_usec":
            return int(v)
    return 0


def main(argv):
    out = argv[0]
    cgroups = []
    servers = None
    i = 1
    while argv[i] != "--":
        if argv[i] == "--cgroup":
            cgroups.append(argv[i + 1])
            i += 2
        elif argv[i] == "--server-cgroup":
            servers = argv[i + 1]
            i += 2
        else:
            raise SystemExit(f"probe: unknown option {argv[i]}")
    cmd = argv[i + 1:]
    before = {c: usage_usec(c) for c in cgroups}
    servers_before = usage_usec(servers) if servers else 0
    t0 = time.monotonic()
    with open(out + ".stdout", "w") as so, open(out + ".stderr", "w") as se:
        rc = subprocess.call(cmd, stdout=so, stderr=se)
    wall = time.monotonic() - t0
    after = {c: usage_usec(c) for c in cgroups}
    result = {"rc": rc, "wall_s": wall,
              "proxy_cpu_s": sum(after[c] - before[c] for c in cgroups) / 1e6}
    if servers:
        result["server_cpu_s"] = (usage_usec(servers) - servers_before) / 1e6
    # The client is this process's only child, so its rusage is the client's.
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["client_cpu_s"] = ru.ru_utime + ru.ru_stime
    json.dump(result, open(out, "w"))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
