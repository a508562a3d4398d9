"""Benchmark driver, run by bench/run.sh inside the benchmark's own network
namespace: python3 -m driver BUILD_DIR RESULTS_DIR.

Order of work: start the servers and proxies; weigh idle connections (first,
while every proxy is fresh); then R rounds, each measuring every path once
per figure with the path order rotated, so that whatever else the machine
does falls on all paths alike; connect() cost the same way; micro-benchmarks
last. Everything it started is stopped by PID, the cgroups removed, on every
way out.
"""
import datetime
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from driver import env, measure, report


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def setting(name, default):
    return int(os.environ.get(name, default))


def machine_facts(mount):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))

    def version(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except OSError:
            return "?"
        lines = (out.stdout + out.stderr).strip().splitlines()
        return next((l.strip() for l in lines if "version" in l.lower()), lines[0] if lines else "?")

    # Other engineers' engines on this machine attach sockops programs to the
    # cgroup root; they run on every connect here too, so say how many there were.
    bpf = subprocess.run(["bpftool", "cgroup", "show", mount], capture_output=True, text=True)
    others = [l.split()[1] for l in bpf.stdout.splitlines()[1:] if l.strip()]
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
        "kernel": os.uname().release,
        "haproxy": version(["haproxy", "-v"]), "socat": version(["socat", "-V"]),
        "nginx": version(["nginx", "-v"]), "iperf3": version(["iperf3", "--version"]),
        "wrk": version(["wrk", "-v"]),
        "other_root_cgroup_bpf_programs": others,
    }


def loadavg():
    return [float(x) for x in open("/proc/loadavg").read().split()[:3]]


def start_world(procs, cg, tmp, build):
    """Servers on loopback, and the proxies that stay up for the whole run."""
    os.chmod(tmp, 0o755)  # nginx workers run as www-data
    env.write(os.path.join(tmp, "nginx.conf"), env.nginx_conf(tmp))
    # In a cgroup of their own, so that the report can take the servers' CPU
    # off what a target leaves a relay (report.budgets).
    procs.start(["nginx", "-p", tmp, "-c", os.path.join(tmp, "nginx.conf"), "-e",
                 os.path.join(tmp, "nginx-error.log")], cgroup=cg["servers"],
                stdout=subprocess.DEVNULL)
    for port in (env.IPERF_PORT, env.IPERF_PORT_NFT_HAPROXY, env.IPERF_PORT_NFT_SOCAT):
        procs.start(["iperf3", "-s", "-p", str(port), "-B", "127.0.0.1"], cgroup=cg["servers"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hold = os.path.join(build, "bench", "hold_conns")
    for port in (env.HOLD_PORT, env.HOLD_PORT_NFT_HAPROXY):
        procs.start([hold, "serve", str(port)], stdout=subprocess.DEVNULL)
    # The least relay there is, once with splice() and once with an sk_skb
    # program: whether handing a flow to the kernel would lift bulk throughput.
    relay = os.path.join(build, "bench", "kernel_relay")
    for mode, (to_iperf, to_nginx) in env.KERNEL_RELAY_PORTS.items():
        for port, target in ((to_iperf, env.IPERF_PORT), (to_nginx, env.NGINX_PORT)):
            procs.start([relay, "serve", str(port), str(target), mode], stdout=subprocess.DEVNULL)
    cc = os.path.join(build, "bench", "connect_cost")
    for port in (env.CONNECT_TARGET_PORT, env.CONNECT_SERVICE_PORT):
        procs.start([cc, "serve", str(port)], stdout=subprocess.DEVNULL)

    pids = {}
    for name, port in (("haproxy-nft", env.HAPROXY_NFT_PORT), ("haproxy-sg", env.HAPROXY_SG_PORT)):
        conf = os.path.join(tmp, f"{name}.cfg")
        env.write(conf, env.haproxy_conf(port))
        p = procs.start(env.as_proxy_user(["haproxy", "-db", "-f", conf]), cgroup=cg[name],
                        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, f"{name}.log"), "w"))
        pids[name] = p.pid
    # socat cannot read SO_ORIGINAL_DST: it forwards to a fixed address, the
    # way it is used as a port forwarder behind REDIRECT.
    for listen, target in ((env.SOCAT_HTTP_PORT, env.NGINX_PORT_NFT_SOCAT),
                           (env.SOCAT_IPERF_PORT, env.IPERF_PORT_NFT_SOCAT)):
        procs.start(env.as_proxy_user(
            ["socat", f"TCP4-LISTEN:{listen},bind=127.0.0.1,fork,reuseaddr,backlog=4096",
             f"TCP4:127.0.0.1:{target}"]), cgroup=cg["socat"], stderr=subprocess.DEVNULL)

    for port in (env.NGINX_PORT, env.NGINX_PORT_NFT_HAPROXY, env.NGINX_PORT_NFT_SOCAT,
                 env.IPERF_PORT, env.IPERF_PORT_NFT_HAPROXY, env.IPERF_PORT_NFT_SOCAT,
                 env.HOLD_PORT, env.HOLD_PORT_NFT_HAPROXY, env.CONNECT_TARGET_PORT,
                 env.CONNECT_SERVICE_PORT, env.HAPROXY_NFT_PORT, env.HAPROXY_SG_PORT,
                 env.SOCAT_HTTP_PORT, env.SOCAT_IPERF_PORT,
                 *[p for ports in env.KERNEL_RELAY_PORTS.values() for p in ports]):
        env.wait_listening(port)
    return pids


def rotated(items, k):
    k %= len(items)
    return items[k:] + items[:k]


def sample(results, figure, path_key, fn):
    try:
        value = fn()
    except measure.MeasureError as e:
        log(f"FAILED {figure} on {path_key}: {e}")
        results.setdefault("failures", []).append(f"{figure} on {path_key}: {e}")
        return
    results.setdefault(figure, {}).setdefault(path_key, []).append(value)


FIGURES = ["idle", "bulk", "kernel_relay", "keepalive", "close", "connect", "micro"]


def subset(name, known):
    """A comma-separated choice from `known` in the environment; all if unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return list(known)
    chosen = [k.strip() for k in raw.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in known]
    if unknown:
        log(f"{name}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
        sys.exit(2)
    return [k for k in known if k in chosen]


def show(value):
    """One sample's headline, for the progress lines."""
    for field, unit in (("gbps", "Gbit/s"), ("rps", "req/s"), ("connect_median_ns", "ns")):
        if field in value:
            return f"{value[field]:,.1f} {unit}"
    return ""


def main(build, results_dir):
    paths = subset("SG_BENCH_PATHS", [p.key for p in measure.PATHS])
    figures = subset("SG_BENCH_FIGURES", FIGURES)
    partial = len(paths) < len(measure.PATHS) or len(figures) < len(FIGURES)
    reps = setting("SG_BENCH_ROUNDS", 5)
    seconds = setting("SG_BENCH_SECONDS", 3)
    wrk_conns = setting("SG_BENCH_WRK_CONNS", 32)
    connect_n = setting("SG_BENCH_CONNECTS", 20000)
    hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # A proxy holds two descriptors per connection; the hard limit caps the
    # count below 10,000 where root may not raise it (no CAP_SYS_RESOURCE).
    idle_n = min(setting("SG_BENCH_IDLE_CONNS", 10000), (hard_nofile - 400) // 2,
                 env.HAPROXY_MAXCONN - 100)

    started = time.monotonic()
    today = datetime.date.today().isoformat()
    data = {"date": today,
            # A run of some paths or figures must not replace the day's full one.
            "name": today + ("-partial" if partial else ""),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": "sudo make bench",
            "settings": {"rounds": reps, "seconds": seconds, "wrk_connections": wrk_conns,
                         "wrk_threads": 1, "nginx_workers": 1, "connects_per_run": connect_n,
                         "idle_connections": idle_n, "rlimit_nofile_hard": hard_nofile,
                         "paths": paths, "figures": figures},
            "load_before": loadavg()}
    mount = env.cgroup2_mount()
    data["machine"] = machine_facts(mount)
    data["paths"] = {p.key: p.label for p in measure.PATHS}
    log(f"load {data['load_before']}; {reps} rounds of {seconds} s per figure and path")
    if partial:
        log(f"only {', '.join(figures)} on {', '.join(paths)}")

    procs = env.Procs()
    cg = None
    tmp = tempfile.mkdtemp(prefix="sg-bench-")

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        cg = env.Cgroups(["haproxy-nft", "haproxy-sg", "socat", "sockgate", "bare",
                           "servers"])
        pids = start_world(procs, cg, tmp, build)
        run = measure.Runner(build, tmp, procs, cg, seconds, wrk_conns)
        res = data.setdefault("samples", {})

        def measure_each(figure, keys, fn):
            if figure not in figures:
                return
            for key in keys:
                sample(res, figure, key, lambda: fn(key))
                if res.get(figure, {}).get(key):
                    log(f"  {figure} {key}: {show(res[figure][key][-1])}")

        # connect() first, in rounds of its own: measured right after the
        # throughput figures, every hook, floors included, came out 2-5
        # points dearer than on a quiet machine, which measured what those
        # figures leave behind rather than the hooks.
        for r in range(reps if "connect" in figures else 0):
            log(f"connect() round {r + 1}/{reps} (load {loadavg()[0]:.2f})")
            measure_each("connect", rotated(["none", "bare", "state", "state_tp", "nomatch",
                                             "match"], r),
                         lambda v: run.connect(v, connect_n))

        mem = data.setdefault("idle_memory", {})
        weighed = [(key, pid) for key, pid in (("sg_builtin", None),
                                               ("nft_haproxy", pids["haproxy-nft"]),
                                               ("sg_haproxy", pids["haproxy-sg"]))
                   if "idle" in figures and key in paths]
        if weighed:
            log(f"idle memory: {idle_n} connections through each proxy")
        for key, pid in weighed:
            try:
                mem[key] = run.idle_memory(measure.PATH_BY_KEY[key], idle_n, pid)
                log(f"  {key}: {mem[key]['bytes_per_conn']:.0f} B per connection")
            except measure.MeasureError as e:
                log(f"FAILED idle memory on {key}: {e}")
                data.setdefault("failures", []).append(f"idle memory on {key}: {e}")

        chosen = [p for p in measure.PATHS if p.key in paths]
        for r in range(reps):
            log(f"round {r + 1}/{reps} (load {loadavg()[0]:.2f})")
            order = [p.key for p in rotated(chosen, r)]
            measure_each("bulk", order, lambda k: run.bulk(measure.PATH_BY_KEY[k]))
            measure_each("kernel_relay", rotated(list(env.KERNEL_RELAY_PORTS), r),
                         run.kernel_relay)
            measure_each("keepalive", order,
                         lambda k: run.http(measure.PATH_BY_KEY[k], close=False))
            measure_each("close", order, lambda k: run.http(measure.PATH_BY_KEY[k], close=True))

        if "micro" in figures:
            log("micro-benchmarks")
            micro = subprocess.run([os.path.join(build, "bench", "flow_work_bench"),
                                    "--benchmark_format=json", "--benchmark_min_time=0.2"],
                                   capture_output=True, text=True, check=True)
            data["micro"] = [{"name": b["name"], "ns": b["real_time"]}
                             for b in json.loads(micro.stdout)["benchmarks"]]

        if "kernel_relay" in figures:
            # Why the upload does not skip the second TCP connection in the
            # kernel: what this kernel does to blocking readers of a socket
            # in a sockhash (README, Benchmarks).
            probe = subprocess.run([os.path.join(build, "bench", "sockmap_read_probe")],
                                   capture_output=True, text=True)
            try:
                data["sockmap_read_probe"] = json.loads(probe.stdout)
            except ValueError:
                data["sockmap_read_probe"] = {"probe": "error", "what": probe.stderr.strip()}
    finally:
        procs.stop_all()
        env.nft_delete()
        if cg:
            cg.remove()
        shutil.rmtree(tmp, ignore_errors=True)

    data["load_after"] = loadavg()
    data["duration_s"] = round(time.monotonic() - started)
    report.write(data, results_dir)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
