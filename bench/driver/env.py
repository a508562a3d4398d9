"""The benchmark's world: the processes it starts, the cgroups it weighs them
in, the servers and proxies with their configuration, and the nftables table.

run.sh has already put us in a network namespace of our own; everything here
binds to 127.0.0.1 inside it, so fixed ports cannot collide with anything.
Every process is started through Procs and stopped by its PID on the way out.
"""
import os
import signal
import subprocess
import time

# Ports, all on 127.0.0.1 in the benchmark's own namespace.
NGINX_PORT = 8080          # direct, HAProxy behind sockgate, sockgate built-in
NGINX_PORT_NFT_HAPROXY = 8081
NGINX_PORT_NFT_SOCAT = 8082
IPERF_PORT = 5201
IPERF_PORT_NFT_HAPROXY = 5202
IPERF_PORT_NFT_SOCAT = 5203
HOLD_PORT = 7000
HOLD_PORT_NFT_HAPROXY = 7001
CONNECT_TARGET_PORT = 6000
CONNECT_SERVICE_PORT = 6001
HAPROXY_NFT_PORT = 9100
HAPROXY_SG_PORT = 9200
SOCAT_HTTP_PORT = 9301
SOCAT_IPERF_PORT = 9302
# bench/kernel_relay by mode: its port to IPERF_PORT, and its port to NGINX_PORT
KERNEL_RELAY_PORTS = {"splice": (9401, 9411), "sockmap": (9402, 9412)}

PROXY_UID = 65534  # nobody: the proxies' own connects must escape REDIRECT

# HAProxy derives its descriptor need from maxconn (2 per connection plus 2
# per pipe); the hard RLIMIT_NOFILE here is 20000 and root lacks
# CAP_SYS_RESOURCE, so maxconn and maxpipes are sized to fit under it.
HAPROXY_MAXCONN = 9900
HAPROXY_MAXPIPES = 64


class Procs:
    """Every process the benchmark starts, so that each is stopped by PID."""

    def __init__(self):
        self.live = []

    def start(self, argv, cgroup=None, **kw):
        def pre():
            os.setsid()  # a terminal's Ctrl-C reaches the driver, which stops us in order
            if cgroup:
                with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                    f.write("0")
        p = subprocess.Popen(argv, preexec_fn=pre, **kw)
        self.live.append(p)
        return p

    def stop(self, p, grace=3.0):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in reversed(list(self.live)):
            self.stop(p)


def wait_listening(port, timeout=10.0):
    """Waits for a TCP listener on port, read from /proc/net/tcp rather than
    probed with a connection: a transparent proxy that is connected to
    directly has no original destination and would connect to itself."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.split(":")[1], 16) == port:
                    return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def cgroup2_mount():
    for line in open("/proc/self/mountinfo"):
        parts = line.split()
        sep = parts.index("-")
        if parts[sep + 1] == "cgroup2":
            return parts[4]
    raise RuntimeError("no cgroup v2 hierarchy mounted")


class Cgroups:
    """One cgroup per proxy under <mount>/sg-bench-<pid>, read for CPU time
    (cpu.stat usage_usec needs no controller). Removed on the way out."""

    def __init__(self, names):
        self.root = os.path.join(cgroup2_mount(), f"sg-bench-{os.getpid()}")
        os.mkdir(self.root)
        self.paths = {}
        for n in names:
            self.paths[n] = os.path.join(self.root, n)
            os.mkdir(self.paths[n])

    def __getitem__(self, name):
        return self.paths[name]

    def remove(self):
        for p in list(self.paths.values()) + [self.root]:
            for _ in range(100):
                try:
                    os.rmdir(p)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # a process just died and is being reaped


def cpu_usec(cgroup):
    for line in open(os.path.join(cgroup, "cpu.stat")):
        k, v = line.split()
        if k == "usage_usec":
            return int(v)
    return 0


def service_process(sockgate_pid):
    """The pid of the process in which `sockgate run` (sockgate_pid) runs
    its built-in services (comm sockgate-svc, a child of the run)."""
    with open(f"/proc/{sockgate_pid}/task/{sockgate_pid}/children") as f:
        children = f.read().split()
    for child in children:
        try:
            with open(f"/proc/{child}/comm") as f:
                if f.read().strip() == "sockgate-svc":
                    return int(child)
        except FileNotFoundError:
            continue
    raise RuntimeError(f"sockgate {sockgate_pid} has no sockgate-svc child")


def vm_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def nginx_conf(tmp):
    www = os.path.join(tmp, "www")
    os.makedirs(www, exist_ok=True)
    # A small file: 1 KiB, what a keep-alive API answer or a tiny asset weighs.
    write(os.path.join(www, "small.html"), "x" * 1023 + "\n")
    return f"""
daemon off;
master_process on;
user www-data;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;
  server {{
    listen 127.0.0.1:{NGINX_PORT} backlog=4096;
    listen 127.0.0.1:{NGINX_PORT_NFT_HAPROXY} backlog=4096;
    listen 127.0.0.1:{NGINX_PORT_NFT_SOCAT} backlog=4096;
    root {www};
  }}
}}
"""


# HAProxy's pipes as large as the built-in service's (PipePool::kPipeBytes),
# so that neither wins bulk by its pipe size alone.
PIPE_BYTES = 1 << 20


def haproxy_conf(port):
    # TCP mode with splice; "server ... 0.0.0.0" without a port means "the
    # address and port the client connected to", which HAProxy learns with
    # getsockopt(SO_ORIGINAL_DST): answered by conntrack after nftables
    # REDIRECT, by sockgate's getsockopt program behind sockgate.
    return f"""
global
  maxconn {HAPROXY_MAXCONN}
  maxpipes {HAPROXY_MAXPIPES}
  tune.pipesize {PIPE_BYTES}
defaults
  mode tcp
  maxconn {HAPROXY_MAXCONN}
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  option splice-auto
frontend transparent
  bind 127.0.0.1:{port} backlog 4096
  default_backend original_destination
backend original_destination
  server original 0.0.0.0
"""


# Only while an nftables path is measured: a NAT table makes conntrack track
# every connection in the namespace, which must not tax the other paths.
NFT_TABLE = "sockgate_bench"


def nft_ruleset():
    return f"""
table ip {NFT_TABLE} {{
  chain redirect_out {{
    type nat hook output priority -100; policy accept;
    # the proxies' own upstream connects go where they asked
    meta skuid {PROXY_UID} accept
    ip daddr 127.0.0.1 tcp dport {{ {NGINX_PORT_NFT_HAPROXY}, {IPERF_PORT_NFT_HAPROXY}, {HOLD_PORT_NFT_HAPROXY} }} redirect to :{HAPROXY_NFT_PORT}
    ip daddr 127.0.0.1 tcp dport {NGINX_PORT_NFT_SOCAT} redirect to :{SOCAT_HTTP_PORT}
    ip daddr 127.0.0.1 tcp dport {IPERF_PORT_NFT_SOCAT} redirect to :{SOCAT_IPERF_PORT}
  }}
}}
"""


def nft_add():
    subprocess.run(["nft", "-f", "-"], input=nft_ruleset(), text=True, check=True)


def nft_delete():
    subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE],
                   stderr=subprocess.DEVNULL, check=False)


def as_proxy_user(argv):
    return ["setpriv", f"--reuid={PROXY_UID}", f"--regid={PROXY_UID}", "--clear-groups"] + argv
