"""The five paths a client's connections can take, and the measurements run
over each: bulk throughput (iperf3), keep-alive and connection-per-request
HTTP (wrk against nginx), connect() cost, idle memory per connection."""
import json
import os
import re
import select
import subprocess
import sys
import time

from driver import env

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")


class Path:
    def __init__(self, key, label, nginx_port, iperf_port, hold_port, cpu_cgroups, nft=False):
        self.key, self.label, self.nft = key, label, nft
        self.nginx_port, self.iperf_port, self.hold_port = nginx_port, iperf_port, hold_port
        self.cpu_cgroups = cpu_cgroups  # names in Cgroups whose CPU is the proxy's


PATHS = [
    Path("direct", "direct loopback", env.NGINX_PORT, env.IPERF_PORT, None, []),
    Path("nft_haproxy", "nftables REDIRECT + HAProxy", env.NGINX_PORT_NFT_HAPROXY,
         env.IPERF_PORT_NFT_HAPROXY, env.HOLD_PORT_NFT_HAPROXY, ["haproxy-nft"], nft=True),
    Path("nft_socat", "nftables REDIRECT + socat", env.NGINX_PORT_NFT_SOCAT,
         env.IPERF_PORT_NFT_SOCAT, None, ["socat"], nft=True),
    Path("sg_haproxy", "HAProxy behind sockgate", env.NGINX_PORT, env.IPERF_PORT, env.HOLD_PORT,
         ["haproxy-sg", "sockgate"]),
    Path("sg_builtin", "sockgate built-in service", env.NGINX_PORT, env.IPERF_PORT, env.HOLD_PORT,
         ["sockgate"]),
]
PATH_BY_KEY = {p.key: p for p in PATHS}


class MeasureError(RuntimeError):
    pass


class Runner:
    def __init__(self, build, tmp, procs, cgroups, seconds, wrk_conns):
        self.build, self.tmp, self.procs, self.cg = build, tmp, procs, cgroups
        self.seconds, self.wrk_conns = seconds, wrk_conns
        self.sockgate = os.path.join(build, "sockgate")
        self.connect_cost = os.path.join(build, "bench", "connect_cost")
        self.hold_conns = os.path.join(build, "bench", "hold_conns")
        self.count = 0

    # -- how a client's command is run on each path ---------------------------

    def wrap(self, path, argv):
        """(argv, cgroup to start it in) that runs argv with its connections on path."""
        if path.key == "sg_haproxy":
            policy = self.policy("haproxy", env.HAPROXY_SG_PORT, cgroup=self.cg["haproxy-sg"])
            return [self.sockgate, "run", "--policy", policy, "--"] + argv, self.cg["sockgate"]
        if path.key == "sg_builtin":
            return [self.sockgate, "run", "--"] + argv, self.cg["sockgate"]
        return argv, None

    def policy(self, name, port, cgroup=None, ports=None):
        """A policy file naming one external service: HAProxy, or the
        connect() benchmark's target; ports narrows its filter."""
        text = (f'[[service]]\nname = "{name}"\nkind = "external"\n'
                f'listen = ["127.0.0.1:{port}"]\nfail = "closed"\n')
        if cgroup:
            text += f'cgroup = "{cgroup}"\n'
        if ports:
            text += f"[service.filter]\nports = {list(ports)}\n"
        path = os.path.join(self.tmp, f"{name}-{port}-{'-'.join(map(str, ports or []))}.toml")
        env.write(path, text)
        return path

    def run_client(self, path, client_argv, timeout):
        self.count += 1
        out = os.path.join(self.tmp, f"probe-{self.count}.json")
        probe = [sys.executable, PROBE, out]
        for name in path.cpu_cgroups:
            probe += ["--cgroup", self.cg[name]]
        probe += ["--server-cgroup", self.cg["servers"]]
        argv, cgroup = self.wrap(path, probe + ["--"] + client_argv)
        if path.nft:
            env.nft_add()
        try:
            with open(out + ".outer", "w") as err:
                p = self.procs.start(argv, cgroup=cgroup, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.procs.stop(p)
                    raise MeasureError(f"{' '.join(client_argv)} on {path.key}: timed out")
                self.procs.stop(p)
        finally:
            if path.nft:
                env.nft_delete()
        outer = open(out + ".outer").read()
        if not os.path.exists(out):
            raise MeasureError(f"{client_argv[0]} on {path.key} did not run: {outer.strip()[-400:]}")
        result = json.load(open(out))
        result["stdout"] = open(out + ".stdout").read()
        result["stderr"] = open(out + ".stderr").read()
        result["outer"] = outer
        if result["rc"] != 0:
            raise MeasureError(f"{client_argv[0]} on {path.key} exited {result['rc']}: "
                               f"{result['stderr'].strip()[-400:]}")
        check_redirected(path, outer)
        return result

    # -- figures ------------------------------------------------------------

    def iperf_argv(self, port):
        return ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(self.seconds), "-J"]

    def wrk_argv(self, port, close=False):
        argv = ["wrk", "-t1", f"-c{self.wrk_conns}", f"-d{self.seconds}s", "--latency"]
        if close:
            argv += ["-H", "Connection: close"]
        return argv + [f"http://127.0.0.1:{port}/small.html"]

    def bulk(self, path):
        r = self.run_client(path, self.iperf_argv(path.iperf_port), timeout=self.seconds + 30)
        j = iperf_result(r["stdout"], r["stderr"], f"iperf3 on {path.key}")
        # sum_sent counts every byte of the run, which is what the CPU time
        # was spent on; sum_received is what arrived in the test window.
        gbps = j["end"]["sum_received"]["bits_per_second"] / 1e9
        gbytes = j["end"]["sum_sent"]["bytes"] / 1e9
        fig = {"gbps": gbps,
               "client_cpu_s_per_gb": r["client_cpu_s"] / gbytes,
               "server_cpu_s_per_gb": r["server_cpu_s"] / gbytes}
        if path.cpu_cgroups:
            fig["proxy_cpu_s"] = r["proxy_cpu_s"]
            fig["cpu_s_per_gb"] = r["proxy_cpu_s"] / gbytes
        return fig

    def kernel_relay(self, mode):
        """iperf3 and keep-alive wrk through bench/kernel_relay in `mode`
        (splice or sockmap)."""
        to_iperf, to_nginx = env.KERNEL_RELAY_PORTS[mode]

        def run(what, argv):
            p = self.procs.start(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            try:
                out, err = p.communicate(timeout=self.seconds + 30)
            except subprocess.TimeoutExpired:
                raise MeasureError(f"{what} through kernel_relay {mode}: timed out")
            finally:
                self.procs.stop(p)
            return out, err

        j = iperf_result(*run("iperf3", self.iperf_argv(to_iperf)),
                         f"iperf3 through kernel_relay {mode}")
        http = wrk_result(run("wrk", self.wrk_argv(to_nginx))[0], f"wrk through kernel_relay {mode}")
        return {"gbps": j["end"]["sum_received"]["bits_per_second"] / 1e9, "ka_rps": http["rps"]}

    def http(self, path, close):
        r = self.run_client(path, self.wrk_argv(path.nginx_port, close),
                            timeout=self.seconds + 30)
        fig = wrk_result(r["stdout"], f"wrk on {path.key}")
        per_req = 1e6 / max(1, fig["requests"])
        fig["client_cpu_us_per_req"] = r["client_cpu_s"] * per_req
        fig["server_cpu_us_per_req"] = r["server_cpu_s"] * per_req
        if path.cpu_cgroups:
            fig["proxy_cpu_us_per_req"] = r["proxy_cpu_s"] * per_req
        return fig

    def connect(self, variant, n):
        client = [self.connect_cost, "run", f"127.0.0.1:{env.CONNECT_TARGET_PORT}", str(n)]
        if variant == "none":
            argv, cgroup = client, None
        elif variant == "bare":
            # the least hook there is, in a cgroup of its own: the anchor
            argv, cgroup = client + ["--hook", "bare", self.cg["bare"]], self.cg["bare"]
        elif variant in ("state", "state_tp"):
            # the least a redirect keeping state pays (bench/connect_floor.bpf.c)
            kind = "state+tracepoint" if variant == "state_tp" else "state"
            argv, cgroup = client + ["--hook", kind, self.cg["bare"]], self.cg["bare"]
        else:
            # The filter names one port: the service's own (so connects to the
            # target do not match) or the target's (so they all do).
            port = env.CONNECT_SERVICE_PORT if variant == "nomatch" else env.CONNECT_TARGET_PORT
            policy = self.policy("target", env.CONNECT_SERVICE_PORT, ports=[port])
            argv = [self.sockgate, "run", "--policy", policy, "--"] + client
            cgroup = self.cg["sockgate"]
        p = self.procs.start(argv, cgroup=cgroup, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=120)
        finally:
            self.procs.stop(p)
        if p.returncode != 0:
            raise MeasureError(f"connect_cost ({variant}) exited {p.returncode}: {err.strip()}")
        if variant in ("nomatch", "match"):
            m = re.search(r"connections: (\d+) redirected, (\d+) direct", err)
            redirected = int(m.group(1)) if m else -1
            if (variant == "match") != (redirected > 0):
                raise MeasureError(f"connect_cost ({variant}): {redirected} connects redirected")
        return json.loads(out.strip().splitlines()[-1])

    def idle_memory(self, path, n, weigh_pid):
        """VmRSS of weigh_pid (or, if None, of the built-in services' process
        of the sockgate run that path starts) before and while n idle
        connections pass through it."""
        argv, cgroup = self.wrap(path, [self.hold_conns, "hold", f"127.0.0.1:{path.hold_port}",
                                        str(n)])
        errpath = os.path.join(self.tmp, f"hold-{path.key}.stderr")
        if path.nft:
            env.nft_add()
        try:
            with open(errpath, "w") as err:
                p = self.procs.start(argv, cgroup=cgroup, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err, text=True)
            pid = weigh_pid
            try:
                expect_line(p, "ready", 30)
                # The built-in services run in a process of sockgate's own.
                pid = pid or env.service_process(p.pid)
                time.sleep(0.5)
                base = env.vm_rss_kib(pid)
                p.stdin.write("go\n")
                p.stdin.flush()
                expect_line(p, f"held {n}", 180)
                time.sleep(1.0)  # let the proxy finish the last flows' bookkeeping
                held = env.vm_rss_kib(pid)
                p.stdin.close()
                p.wait(120)
            except MeasureError as e:
                raise MeasureError(f"{e}: {open(errpath).read().strip()[-400:]}")
            finally:
                self.procs.stop(p)
        finally:
            if path.nft:
                env.nft_delete()
        return {"connections": n, "rss_base_kib": base, "rss_held_kib": held,
                "bytes_per_conn": (held - base) * 1024 / n}


def expect_line(p, want, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.time()))
        if not r:
            break
        line = p.stdout.readline()
        if not line:
            raise MeasureError(f"client ended before '{want}' (exit {p.poll()})")
        if line.strip() == want:
            return
    raise MeasureError(f"no '{want}' from the client within {timeout} s")


def check_redirected(path, outer):
    """sockgate run says how many connects it redirected; a
    sockgate path where nothing was redirected measured the wrong thing."""
    if not path.key.startswith("sg_"):
        return
    m = re.search(r"connections: (\d+) redirected", outer)
    if not m or int(m.group(1)) == 0:
        raise MeasureError(f"{path.key}: no connection was redirected: {outer.strip()[-300:]}")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def iperf_result(out, err, what):
    """iperf3 -J's report, or MeasureError naming `what`."""
    try:
        j = json.loads(out)
    except ValueError:
        raise MeasureError(f"{what}: {err.strip()[-400:]}")
    if "error" in j:
        raise MeasureError(f"{what}: {j['error']}")
    return j


def wrk_result(text, what):
    """wrk's figures, or MeasureError naming `what` if more than 0.1 % failed."""
    fig = parse_wrk(text)
    if fig["errors"] > fig["requests"] * 0.001:
        raise MeasureError(f"{what}: {fig['errors']} errors in {fig['requests']} requests")
    return fig


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        # a read error is how wrk counts the server closing after a
        # Connection: close answer it already read; not a failure
        errors += int(m.group(1)) + int(m.group(3)) + int(m.group(4))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    return {"rps": rps, "requests": requests, "p50_ms": _ms(lat["50"]), "p99_ms": _ms(lat["99"]),
            "errors": errors}
