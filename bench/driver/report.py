"""From samples to what a reader needs: median [min-max] per figure and path,
ratios to direct and to the best other proxy, the issue's targets as MET or
MISSED, a table on stdout, results/<date>.json and a PNG chart."""
import json
import os
import statistics
import subprocess
import tempfile

PROXIES = ["nft_haproxy", "nft_socat", "sg_haproxy", "sg_builtin"]
ORDER = ["direct"] + PROXIES
SHORT = {"direct": "direct", "nft_haproxy": "nft+HAProxy", "nft_socat": "nft+socat",
         "sg_haproxy": "sockgate+HAProxy", "sg_builtin": "sockgate built-in"}

# (id, sample set, field, label, unit, higher is better)
FIGURES = [
    ("bulk_gbps", "bulk", "gbps", "bulk throughput", "Gbit/s", True),
    ("bulk_cpu", "bulk", "cpu_s_per_gb", "  proxy CPU", "s/GB", False),
    ("bulk_client_cpu", "bulk", "client_cpu_s_per_gb", "  client CPU", "s/GB", False),
    ("bulk_server_cpu", "bulk", "server_cpu_s_per_gb", "  server CPU", "s/GB", False),
    ("ka_rps", "keepalive", "rps", "keep-alive", "req/s", True),
    ("ka_p50", "keepalive", "p50_ms", "  p50", "ms", False),
    ("ka_p99", "keepalive", "p99_ms", "  p99", "ms", False),
    ("ka_cpu", "keepalive", "proxy_cpu_us_per_req", "  proxy CPU", "us/req", False),
    ("ka_client_cpu", "keepalive", "client_cpu_us_per_req", "  client CPU", "us/req", False),
    ("ka_server_cpu", "keepalive", "server_cpu_us_per_req", "  server CPU", "us/req", False),
    ("close_rps", "close", "rps", "connection per request", "req/s", True),
    ("close_p50", "close", "p50_ms", "  p50", "ms", False),
    ("close_p99", "close", "p99_ms", "  p99", "ms", False),
    ("close_cpu", "close", "proxy_cpu_us_per_req", "  proxy CPU", "us/req", False),
    ("close_client_cpu", "close", "client_cpu_us_per_req", "  client CPU", "us/req", False),
    ("close_server_cpu", "close", "server_cpu_us_per_req", "  server CPU", "us/req", False),
]
# For each throughput target: the rate figure, the CPU figures per unit
# (proxy, client, server), and how a rate converts to units per second.
BUDGETS = [
    ("bulk_gbps", "bulk_cpu", "bulk_client_cpu", "bulk_server_cpu", "s/GB", 1 / 8),
    ("ka_rps", "ka_cpu", "ka_client_cpu", "ka_server_cpu", "us/req", 1e-6),
    ("close_rps", "close_cpu", "close_client_cpu", "close_server_cpu", "us/req", 1e-6),
]
CONNECT = [("none", "no hook"), ("bare", "bare hook (allow all)"),
           ("state", "floor: sk storage"), ("state_tp", "floor: + tracepoint"),
           ("nomatch", "hook, not matching"), ("match", "hook, matching")]

TARGETS = [  # (figure, what, bound, is a floor)
    ("bulk_gbps", "bulk throughput >= 0.65 of direct", 0.65, True),
    ("ka_rps", "keep-alive requests/s >= 0.75 of direct", 0.75, True),
    ("close_rps", "connection-per-request requests/s >= 0.55 of direct", 0.55, True),
]
# What the issue measured for the anchors on this machine class.
REFERENCE = [("bulk_gbps", 0.52), ("ka_rps", 0.64), ("close_rps", 0.37)]


def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "samples": values}


def summarize(data):
    samples = data.get("samples", {})
    figs = {}
    for fid, sset, field, _label, _unit, higher in FIGURES:
        per_path = {}
        for key, runs in samples.get(sset, {}).items():
            vals = [r[field] for r in runs if field in r]
            if vals:
                per_path[key] = stats(vals)
        for key, s in per_path.items():
            if "direct" in per_path and key != "direct" and per_path["direct"]["median"] > 0:
                d = per_path["direct"]["median"]
                s["to_direct"] = s["median"] / d
                s["to_direct_min"] = s["min"] / d
                s["to_direct_max"] = s["max"] / d
            others = [per_path[k]["median"] for k in PROXIES if k in per_path and k != key]
            best = (max(others) if higher else min(others)) if others else 0
            if key != "direct" and best > 0:
                s["to_best_other"] = s["median"] / best
        figs[fid] = per_path
    conn = {}
    for v, _ in CONNECT:
        runs = samples.get("connect", {}).get(v, [])
        if runs:
            conn[v] = stats([r["connect_median_ns"] for r in runs])
            conn[v]["loop"] = stats([r["loop_median_ns"] for r in runs])
    if "none" in conn:
        for v in ("bare", "state", "state_tp", "nomatch", "match"):
            if v in conn:
                conn[v]["to_none"] = conn[v]["median"] / conn["none"]["median"]
                conn[v]["loop"]["to_none"] = conn[v]["loop"]["median"] / conn["none"]["loop"]["median"]
    relay = {}
    for mode, runs in samples.get("kernel_relay", {}).items():
        relay[mode] = {}
        for field, fid in (("gbps", "bulk_gbps"), ("ka_rps", "ka_rps")):
            st = relay[mode][field] = stats([r[field] for r in runs])
            direct = figs.get(fid, {}).get("direct", {}).get("median")
            if direct:
                st["to_direct"] = st["median"] / direct
    figs["kernel_relay"] = relay
    return figs, conn


def verdicts(figs, conn, mem):
    out = []
    b = figs
    for fid, what, bound, floor in TARGETS:
        r = b.get(fid, {}).get("sg_builtin", {}).get("to_direct")
        out.append({"target": what, "measured": r,
                    "met": r is not None and (r >= bound if floor else r <= bound)})
    r = conn.get("match", {}).get("to_none")
    out.append({"target": "matching connect() costs <= 1.05 x no hook", "measured": r,
                "met": r is not None and r <= 1.05})
    m = mem.get("sg_builtin", {}).get("bytes_per_conn")
    out.append({"target": "idle flow < 10 KiB resident (built-in service)",
                "measured": m, "met": m is not None and m < 10240})
    return out


def budgets(figs, cores):
    """What each throughput target leaves the built-in service, in CPU per
    unit, if every core were busy with client, server and service and
    nothing else: cores / (target x direct's rate), less what the client
    and the server spend per unit on the built-in's path. A service that
    spends more than this cannot meet the target however it is scheduled."""
    out = {}
    for rate, proxy, client, server, unit, per_s in BUDGETS:
        bound = next(t[2] for t in TARGETS if t[0] == rate)
        direct = figs.get(rate, {}).get("direct", {}).get("median")
        path = {k: figs.get(k, {}).get("sg_builtin", {}).get("median")
                for k in (proxy, client, server)}
        if not direct or None in path.values():
            continue
        whole = cores / (bound * direct * per_s)
        out[rate] = {"target": bound, "unit": unit, "per_unit_all_cores": whole,
                     "client": path[client], "server": path[server],
                     "service_budget": whole - path[client] - path[server],
                     "service": path[proxy]}
    return out


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(data, figs, conn, verdict):
    m = data["machine"]
    s = data["settings"]
    lines = []
    lines.append(f"sockgate benchmark {data['date']}: {m['cores']} cores ({m['cpu']}), "
                 f"Linux {m['kernel']}, load {data['load_before'][0]:.2f} before, "
                 f"{data['load_after'][0]:.2f} after")
    lines.append(f"{s['rounds']} interleaved rounds, {s['seconds']} s per run; "
                 f"median [min-max]; wrk -t1 -c{s['wrk_connections']}, nginx 1 worker, 1 KiB file; "
                 f"iperf3 1 stream")
    lines.append("")
    w0, w = 24, 26
    lines.append("figure".ljust(w0) + "unit".ljust(8) + "".join(SHORT[k].rjust(w) for k in ORDER))
    for fid, _s, _f, label, unit, _h in FIGURES:
        per = figs.get(fid, {})
        if not per:
            continue
        row = label.ljust(w0) + unit.ljust(8)
        for k in ORDER:
            st = per.get(k)
            cell = f"{fmt(st['median'])} [{fmt(st['min'])}-{fmt(st['max'])}]" if st else "-"
            row += cell.rjust(w)
        lines.append(row)
        if fid.endswith(("gbps", "rps")):
            for rk, rlabel in (("to_direct", "  x direct"), ("to_best_other", "  x best other proxy")):
                row = rlabel.ljust(w0 + 8)
                for k in ORDER:
                    v = per.get(k, {}).get(rk)
                    row += (f"{v:.2f}" if v is not None else "-").rjust(w)
                lines.append(row)
    lines.append("")
    lines.append("connect() from the application, ns (median of each run's per-call median)")
    for v, label in CONNECT:
        c = conn.get(v)
        if not c:
            continue
        ratio = f"  x no hook {c['to_none']:.3f}" if "to_none" in c else ""
        loop = c["loop"]
        lratio = f" (x {loop['to_none']:.3f})" if "to_none" in loop else ""
        lines.append(f"  {label:<22}{fmt(c['median']):>8} [{fmt(c['min'])}-{fmt(c['max'])}]"
                     f"{ratio:<18}  socket+connect+close {fmt(loop['median'])}{lratio}")
    lines.append("")
    mem = data.get("idle_memory", {})
    if mem:
        any_m = next(iter(mem.values()))
        lines.append(f"idle proxied connections: resident memory of the proxy process per "
                     f"connection, at {any_m['connections']:,} connections")
        for k in PROXIES:
            if k in mem:
                e = mem[k]
                lines.append(f"  {SHORT[k]:<22}{e['bytes_per_conn'] / 1024:8.2f} KiB  "
                             f"(VmRSS {e['rss_base_kib']:,} -> {e['rss_held_kib']:,} KiB)")
        lines.append(f"  {SHORT['nft_socat']:<22}     n/a  (one process per connection)")
        lines.append("")
    lines.append("targets (sockgate built-in service)")
    for v in verdict:
        meas = v["measured"]
        if meas is None:
            shown = "not measured"
        elif "KiB" in v["target"]:
            shown = f"{meas / 1024:.2f} KiB"
        else:
            shown = f"{meas:.3f}"
        verdict_word = "-     " if meas is None else "MET   " if v["met"] else "MISSED"
        lines.append(f"  {verdict_word} {v['target']}: {shown}")
    lines.append("")
    lines.append("reference points the issue gives for this machine (informational)")
    for fid, expect in REFERENCE:
        r = figs.get(fid, {}).get("nft_haproxy", {}).get("to_direct")
        label = next(f[3] for f in FIGURES if f[0] == fid)
        lines.append(f"  nft+HAProxy {label}: {r:.2f} of direct (issue: ~{expect})" if r else
                     f"  nft+HAProxy {label}: not measured")
    c = conn.get("bare", {}).get("to_none")
    if c:
        lines.append(f"  bare eBPF connect hook: {(c - 1) * 100:+.1f} % per connect() (issue: ~1-3 %)")
    c = conn.get("nomatch", {}).get("to_none")
    if c:
        lines.append(f"  sockgate's hooks, not matching: {(c - 1) * 100:+.1f} % per connect()")
    c = conn.get("state_tp", {}).get("to_none")
    if c:
        lines.append(f"  floor of a redirect that keeps state with the socket and learns the flow "
                     f"when it is established: {(c - 1) * 100:+.1f} % per connect() (target: +5 %)")
    if data["machine"]["other_root_cgroup_bpf_programs"]:
        lines.append(f"  note: {len(data['machine']['other_root_cgroup_bpf_programs'])} cgroup BPF "
                     "program(s) of other processes were attached at the cgroup root at start "
                     "(they run on every path alike)")
    probe = data.get("sockmap_read_probe")
    if probe:
        lines.append("")
        lines.append("kernel bypass of the upload (sk_msg on the application's socket): not used")
        if "blocking_reads_intact" not in probe:
            lines.append(f"  sockmap_read_probe could not run: {probe.get('what', '?')}")
        else:
            def said(o):
                return "EOF" if o["eof"] else f"{o['result']} ({o['errno']})"
            lines.append("  blocking recv() on a socket in a sockhash, until the peer's FIN: "
                         f"{said(probe['fin_only'])}; while another thread sends on it: "
                         f"{said(probe['while_another_thread_sends'])}")
            lines.append("  this kernel keeps blocking reads intact in a sockmap: " +
                         ("yes (the bypass could be tried)" if probe["blocking_reads_intact"]
                          else "no, so a bypass would break blocking applications"))
    relay = figs.get("kernel_relay", {})
    if relay:
        lines.append("")
        lines.append("handing a flow to the kernel between the service's two sockets "
                     "(bench/kernel_relay, one thread per flow)")
        for mode, label in (("splice", "splice() through a pipe"),
                            ("sockmap", "sk_skb verdict redirect")):
            for field, unit in (("gbps", "Gbit/s bulk"), ("ka_rps", "req/s keep-alive")):
                st = relay.get(mode, {}).get(field)
                if st:
                    ratio = f"  x direct {st['to_direct']:.2f}" if "to_direct" in st else ""
                    lines.append(f"  {label:<26}{unit:<18}{fmt(st['median']):>8} "
                                 f"[{fmt(st['min'])}-{fmt(st['max'])}]{ratio}")
    budget = figs.get("budgets", {})
    if budget:
        lines.append("")
        lines.append(f"what each target leaves the built-in service, with all {m['cores']} cores "
                     "busy with client, server and service only")
        for rate, b in budget.items():
            label = next(f[3] for f in FIGURES if f[0] == rate)
            lines.append(f"  {label} at {b['target']} of direct: {fmt(b['per_unit_all_cores'])} "
                         f"{b['unit']}, less client {fmt(b['client'])} and server "
                         f"{fmt(b['server'])}: service <= {fmt(b['service_budget'])}, "
                         f"spends {fmt(b['service'])}")
    for f in data.get("failures", []):
        lines.append(f"  FAILED: {f}")
    return "\n".join(lines) + "\n"


def chart(path, figs, conn, mem):
    tmp = tempfile.mkdtemp(prefix="sg-bench-chart-")
    groups = [("bulk_gbps", "bulk"), ("ka_rps", "keep-alive"), ("close_rps", "per request")]
    # x labels short enough not to run into each other at this chart size
    tick = {"none": "no hook", "bare": "bare", "state": "floor st", "state_tp": "floor st+tp",
            "nomatch": "no match", "match": "match",
            "nft_haproxy": "nft+HAP", "nft_socat": "nft+socat", "sg_haproxy": "sg+HAP",
            "sg_builtin": "sg built-in"}
    with open(os.path.join(tmp, "ratios.dat"), "w") as f:
        for fid, label in groups:
            row = [f'"{label}"']
            for k in PROXIES:
                s = figs.get(fid, {}).get(k, {})
                row += [str(s.get("to_direct", 0)), str(s.get("to_direct_min", 0)),
                        str(s.get("to_direct_max", 0))]
            f.write(" ".join(row) + "\n")
    with open(os.path.join(tmp, "connect.dat"), "w") as f:
        for v, _label in CONNECT:
            c = conn.get(v)
            if c:
                f.write(f'"{tick[v]}" {c["median"]} {c["min"]} {c["max"]}\n')
        if not conn:  # a partial run (SG_BENCH_FIGURES) leaves the panel empty
            f.write('"not measured" 0 0 0\n')
    with open(os.path.join(tmp, "memory.dat"), "w") as f:
        for k in PROXIES:
            if k in mem:
                f.write(f'"{tick[k]}" {mem[k]["bytes_per_conn"] / 1024}\n')
        if not mem:
            f.write('"not measured" 0\n')
    colors = ["#4477aa", "#66ccee", "#ccbb44", "#ee6677"]
    plots = []
    for i, k in enumerate(PROXIES):
        c = 2 + 3 * i
        src = "'ratios.dat'" if i == 0 else "''"
        plots.append(f"{src} using {c}:{c + 1}:{c + 2}{':xtic(1)' if i == 0 else ''} "
                     f"title '{SHORT[k]}' lc rgb '{colors[i]}'")
    targets = "\n".join(
        f"set arrow from {x - 0.45},{b} to {x + 0.45},{b} nohead dt 2 lw 2 lc rgb '#aa0000' front"
        for x, (_f, _w, b, _fl) in enumerate(TARGETS))
    script = f"""
set terminal pngcairo size 1500,520 font 'DejaVu Sans,11'
set output '{path}'
cd '{tmp}'
set multiplot layout 1,3 title 'sockgate benchmark: proxies against direct loopback (median, bars: min-max)'
set style data histogram
set style histogram errorbars gap 1.5 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top right font ',9'
set title 'throughput, fraction of direct (dashed: sockgate targets)'
set yrange [0:1.15]
{targets}
plot {', '.join(plots)}
unset arrow
set title 'connect() cost, ns per call'
set key off
set yrange [0:*]
set xtics rotate by -30
plot 'connect.dat' using 2:3:4:xtic(1) lc rgb '#4477aa'
set xtics norotate
set title 'resident memory per idle connection, KiB'
set style histogram clustered gap 1.5
set arrow from -0.5,10 to 2.5,10 nohead dt 2 lw 2 lc rgb '#aa0000' front
set label 'target < 10 KiB' at -0.4,10.6 tc rgb '#aa0000'
set yrange [0:12]
plot 'memory.dat' using 2:xtic(1) lc rgb '#ee6677'
unset multiplot
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"gnuplot: {r.stderr}")
    for n in os.listdir(tmp):
        os.remove(os.path.join(tmp, n))
    os.rmdir(tmp)


def write(data, results_dir):
    figs, conn = summarize(data)
    figs["budgets"] = budgets(figs, data["machine"]["cores"])
    mem = data.get("idle_memory", {})
    verdict = verdicts(figs, conn, mem)
    data["figures"] = figs
    data["connect"] = conn
    data["targets"] = verdict
    text = table(data, figs, conn, verdict)
    os.makedirs(results_dir, exist_ok=True)
    base = os.path.join(results_dir, data.get("name", data["date"]))
    data["table"] = text.splitlines()
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1)
    chart(base + ".png", figs, conn, mem)
    print(text, end="")
    print(f"results: {base}.json, chart: {base}.png ({data['duration_s']} s)")
