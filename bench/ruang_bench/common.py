"""What every benchmark needs: a Ruang server to measure, its API and metrics, process CPU
accounting, machine facts, percentiles, and the way results are printed."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

CLK_TCK = os.sysconf("SC_CLK_TCK")  # kernel clock ticks per second (/proc CPU times)
SERVER_START_TIMEOUT_S = 30.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the server under test ---------------------------------------------------------------------
@dataclass
class BenchServer:
    """A Ruang server: one this benchmark started (proc set) or one given by --url."""

    url: str
    data_dir: Path | None = None
    pid: int | None = None  # `ruang serve`: the supervisor of the media processes and workers
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def spaces_dir(self) -> Path | None:
        """Where each space's files are, if known."""
        return None if self.data_dir is None else self.data_dir / "spaces"

    def _children(self, kind: str) -> list[int]:
        """The supervisor's children of a kind ("media" or "worker"): from the pids it records
        in DATA_DIR/supervisor.json (which leaves out the idle warm spare), else from their
        command lines (spare included)."""
        if self.pid is None:
            return []
        if self.data_dir is not None:
            try:
                status = json.loads((self.data_dir / "supervisor.json").read_text())
                if status.get("pid") == self.pid:
                    return [int(p) for _, p in sorted(status["children"][kind].items())]
            except (OSError, ValueError, KeyError):
                pass
        module = b"ruang.live.process" if kind == "media" else b"ruang.delivery.worker"
        out = []
        for child in children_of(self.pid):
            with contextlib.suppress(OSError):
                if module in Path(f"/proc/{child}/cmdline").read_bytes():
                    out.append(child)
        return out

    def media_pids(self) -> list[int]:
        """The media processes (each runs a share of the spaces)."""
        return self._children("media")

    def worker_pids(self) -> list[int]:
        """The delivery worker processes."""
        return self._children("worker")

    def server_pids(self) -> list[int]:
        """Every process of the server: supervisor, media processes, workers (and spare)."""
        return [] if self.pid is None else [self.pid, *children_of(self.pid)]

    def log(self) -> str:
        """What a server we started printed so far (last 4 KB)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGTERM a server we started, then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(
    data_dir: Path, workers: int = 1, port: int | None = None, extra: Sequence[str] = ()
) -> BenchServer:
    """Start `ruang serve` on loopback with its own data folder (and `extra` options);
    returns once /healthz answers."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RUANG_CREATE_KEY", secrets.token_hex(16))  # see create_auth
    log_path = data_dir.parent / f"server-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - kept open for the server's life
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ruang.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--ice-address",
            "127.0.0.1",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        # The mixer's figures are measured without captions (their process would share the
        # cores); `ruang bench captions` measures those. RUANG_CAPTIONS=on puts them back.
        env={"RUANG_CAPTIONS": "off", **os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = BenchServer(f"http://127.0.0.1:{port}", data_dir, proc.pid, proc, log_path)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ruang serve exited with {proc.returncode}: {server.log()}")
        try:
            healthy = httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200
            if healthy and len(server.worker_pids()) >= workers and server.media_pids():
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"ruang serve did not come up on port {port}: {server.log()}")


@contextlib.contextmanager
def server_for(
    args: argparse.Namespace, workers: int | None = None, extra: Sequence[str] = ()
) -> Iterator[BenchServer]:
    """The server to measure: --url if given, else a fresh one in a temporary folder (started
    with the `extra` options of `ruang serve`)."""
    if args.url:
        yield BenchServer(
            args.url.rstrip("/"),
            Path(args.data_dir) if args.data_dir else None,
            args.server_pid,
        )
        return
    with tempfile.TemporaryDirectory(prefix="ruang-bench-") as tmp:
        server = start_server(Path(tmp) / "data", workers or args.workers, extra=extra)
        try:
            yield server
        finally:
            server.stop()


def add_server_arguments(p: argparse.ArgumentParser, workers: int = 1) -> None:
    """Options every benchmark shares: which server, and where the JSON goes."""
    p.add_argument("--url", help="measure this running server instead of starting one")
    p.add_argument(
        "--data-dir",
        help="with --url: the server's data folder (for its files, index and control socket)",
    )
    p.add_argument(
        "--server-pid", type=int, help="with --url: the pid of `ruang serve` (CPU figures)"
    )
    p.add_argument(
        "--workers", type=int, default=workers, help="delivery workers of the started server"
    )
    p.add_argument("--out", type=Path, help="also write the JSON result to this file")


# -- API ---------------------------------------------------------------------------------------
class ApiError(RuntimeError):
    """An API call answered something else than expected; `status` and `retry_after` say what."""

    def __init__(self, what: str, r: httpx.Response) -> None:
        super().__init__(f"{what} answered {r.status_code}: {r.text}")
        self.status = r.status_code
        self.retry_after = r.headers.get("retry-after")


@dataclass
class Space:
    """A space created for a benchmark, with its host credentials."""

    id: str
    host_token: str
    whip_url: str
    speakers: list[tuple[str, str]] = field(default_factory=list)  # (token, whip_url)


def create_auth() -> dict[str, str]:
    """The Authorization a benchmark creates spaces with: the operator's create key
    (RUANG_CREATE_KEY; a server the bench starts gets one), so that the per-source creation
    caps, meant for strangers, do not stop a bench that makes many spaces from one address."""
    key = os.environ.get("RUANG_CREATE_KEY", "")
    return {"Authorization": f"Bearer {key}"} if key else {}


async def create_space(
    api: httpx.AsyncClient, title: str, speakers: int = 0, names: str = "Speaker"
) -> Space:
    """Create a live space and invite `speakers` more people (the host is one more)."""
    r = await api.post("/api/spaces", json={"title": title}, headers=create_auth())
    if r.status_code != 201:
        raise ApiError("POST /api/spaces", r)
    d = r.json()
    space = Space(d["id"], d["host_token"], d["whip_url"])
    auth = {"Authorization": f"Bearer {space.host_token}"}
    for i in range(speakers):
        r = await api.post(
            f"/api/spaces/{space.id}/speakers", json={"name": f"{names} {i + 1}"}, headers=auth
        )
        if r.status_code != 201:
            raise ApiError("inviting a speaker", r)
        s = r.json()
        space.speakers.append((s["token"], s["whip_url"]))
    return space


async def end_space(api: httpx.AsyncClient, space: Space) -> None:
    """End a space (its replay is finalised)."""
    await api.post(
        f"/api/spaces/{space.id}/end", headers={"Authorization": f"Bearer {space.host_token}"}
    )


async def listen_url(api: httpx.AsyncClient, space: Space) -> str:
    """The listen URL `join` hands out."""
    r = await api.post(f"/api/spaces/{space.id}/join")
    if r.status_code != 200:
        raise RuntimeError(f"join answered {r.status_code}: {r.text}")
    return str(r.json()["listen_url"])


# -- metrics -----------------------------------------------------------------------------------
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Metrics = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse_metrics(text: str) -> Metrics:
    """Prometheus text format → {name: {labels: value}} (counters also under their base name)."""
    out: Metrics = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        key = tuple(sorted(_LABEL.findall(labels)))
        out.setdefault(name, {})[key] = float(value)
        if name.endswith("_total"):
            out.setdefault(name[: -len("_total")], {})[key] = float(value)
    return out


# Every client here speaks plain HTTP on loopback: verify=False spares the ~100 ms of CA
# bundle loading that httpx does, synchronously, for each new client (it stalls the event
# loop, and with it any publisher paced on that loop).


async def fetch_metrics(server: BenchServer) -> Metrics:
    """/metrics from the public port, or from the media process's control socket when the
    public port does not serve it."""
    async with httpx.AsyncClient(verify=False, timeout=10) as c:
        r = await c.get(f"{server.url}/metrics")
    if r.status_code == 200 and "ruang_" in r.text:
        return parse_metrics(r.text)
    if server.data_dir is not None and (server.data_dir / "control.sock").exists():
        transport = httpx.AsyncHTTPTransport(uds=str(server.data_dir / "control.sock"))
        async with httpx.AsyncClient(verify=False, transport=transport, timeout=10) as c:
            r = await c.get("http://control/metrics")
        if r.status_code == 200:
            return parse_metrics(r.text)
    raise RuntimeError(f"no metrics: {server.url}/metrics answered {r.status_code}")


def metric(m: Metrics, name: str, space: str | None = None) -> float:
    """One metric's value for a space (or summed over every label set)."""
    series = m.get(name, {})
    if space is None:
        return sum(series.values())
    return sum(v for k, v in series.items() if ("space", space) in k)


async def metrics_served_publicly(server: BenchServer) -> bool:
    """True when GET /metrics on the public port answers Prometheus text."""
    async with httpx.AsyncClient(verify=False, timeout=10) as c:
        r = await c.get(f"{server.url}/metrics")
    return r.status_code == 200 and "ruang_" in r.text


# -- CPU ---------------------------------------------------------------------------------------
def process_cpu_s(pid: int) -> float:
    """User+system CPU seconds a process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        raw = f.read()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def run_delay_s(pid: int) -> float:
    """Seconds the process's threads have spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with (
            contextlib.suppress(OSError, ValueError, IndexError),
            open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as f,
        ):
            total += int(f.read().split()[1])
    return total / 1e9


def children_of(pid: int) -> list[int]:
    """Direct child processes of pid."""
    kids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                raw = f.read()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        parts = f.readline().split()[1:]
    ticks = [int(x) for x in parts[:8]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / CLK_TCK, sum(ticks) / CLK_TCK


class CpuMeter:
    """CPU used by some processes, and by the whole machine, between start() and read()."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self._t0 = 0.0
        self._cpu0: dict[str, float] = {}
        self._wait0: dict[str, float] = {}
        self._machine0 = (0.0, 0.0)

    def _sample(self) -> tuple[dict[str, float], dict[str, float]]:
        cpu, wait = {}, {}
        for name, pids in self.pids.items():
            cpu[name] = wait[name] = 0.0
            for pid in pids:
                with contextlib.suppress(OSError):
                    cpu[name] += process_cpu_s(pid)
                    wait[name] += run_delay_s(pid)
        return cpu, wait

    def start(self) -> None:
        """Begin a measurement window."""
        self._t0 = time.monotonic()
        self._cpu0, self._wait0 = self._sample()
        self._machine0 = machine_cpu()

    def read(self) -> dict[str, float]:
        """Cores used by each group over the window (1.0 = one core busy), the time its
        threads waited for a CPU while runnable (seconds per second, summed over threads),
        and the machine."""
        wall = time.monotonic() - self._t0
        now, wait = self._sample()
        busy, total = machine_cpu()
        out = {f"{k}_cores": round((now[k] - self._cpu0[k]) / wall, 4) for k in now}
        for k in wait:
            out[f"{k}_cpu_wait"] = round((wait[k] - self._wait0[k]) / wall, 4)
        out["machine_cores_busy"] = round((busy - self._machine0[0]) / wall, 4)
        out["machine_busy_fraction"] = round(
            (busy - self._machine0[0]) / max(1e-9, total - self._machine0[1]), 4
        )
        out["wall_s"] = round(wall, 3)
        return out


def tree_cpu_by_pid(root: int) -> dict[int, float]:
    """CPU seconds of `root` and of every live process below it, by pid. Each figure is the
    process's own threads plus the children it has waited for, so that the work of a child
    that exited (a restarted media process, a finished wrk run) stays in its parent's."""
    ppid: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        pid = int(entry)
        ppid[pid] = int(fields[1])
        # utime, stime, cutime, cstime (fields 14-17)
        cpu[pid] = sum(int(x) for x in fields[11:15]) / CLK_TCK
    tree: dict[int, float] = {}
    for pid in cpu:
        p = pid
        while p > 1 and p != root:
            p = ppid.get(p, 0)
        if p == root:
            tree[pid] = cpu[pid]
    return tree


def _tree_cpu_s(root: int) -> float:
    """CPU seconds of a process, its reaped children, and every live descendant."""
    return sum(tree_cpu_by_pid(root).values())


def process_label(pid: int) -> str:
    """What a process runs, in a few words: its command line without the interpreter and
    from the first option on (`ruang.cli serve`, `ruang.delivery.worker 3 0`)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "(exited)"
    if argv and "python" in Path(argv[0]).name:
        argv = argv[2:] if argv[1:2] == ["-m"] else argv[1:]
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    return " ".join(argv[: max(1, first_option)])[:80]


def cpu_pressure() -> float | None:
    """Share of the last 10 s in which some runnable task waited for a CPU (PSI), percent."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as f:
            return float(f.readline().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return None


class MachineLoad:
    """How busy the machine was during a benchmark, and how much of it was not ours: other
    people's work on a shared machine skews every figure, so every result says how much."""

    def __init__(self, extra_pids: Sequence[int] = ()) -> None:
        self.extra = list(extra_pids)

    def _ours(self) -> float:
        total = _tree_cpu_s(os.getpid())
        for pid in self.extra:
            with contextlib.suppress(OSError):
                total += process_cpu_s(pid)
        return total

    def start(self) -> None:
        """Begin the window."""
        self._t0 = time.monotonic()
        self._machine0 = machine_cpu()[0]
        self._ours0 = self._ours()
        self._psi0 = cpu_pressure()
        self._load0 = os.getloadavg()[0]

    def read(self) -> dict[str, Any]:
        """Cores busy on the machine, ours and others', over the window."""
        wall = time.monotonic() - self._t0
        machine = (machine_cpu()[0] - self._machine0) / wall
        ours = (self._ours() - self._ours0) / wall
        return {
            "wall_s": round(wall, 1),
            "machine_cores_busy": round(machine, 2),
            "ours_cores": round(ours, 2),
            "others_cores": round(max(0.0, machine - ours), 2),
            "cpu_pressure_some_avg10_pct": [self._psi0, cpu_pressure()],
            "loadavg1": [round(self._load0, 2), round(os.getloadavg()[0], 2)],
        }


# -- results -----------------------------------------------------------------------------------
def machine_facts() -> dict[str, Any]:
    """The facts a reader needs to weigh a figure: cores, CPU, kernel, date, versions."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = dirty = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(  # uncommitted changes to the code under test
            ["git", "status", "--porcelain", "--untracked-files=no", "src"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
    return {
        "nproc": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "git_commit": commit,
        "src_modified": [line[3:] for line in dirty.splitlines() if line.strip()],
    }


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95)) -> dict[str, float]:
    """{"p50": ..., "p95": ..., "min", "max", "n"} of a list (rounded to 0.1 ms when seconds)."""
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64)
    out: dict[str, float] = {f"p{q:g}": round(float(np.percentile(a, q)), 4) for q in qs}
    out["min"] = round(float(a.min()), 4)
    out["max"] = round(float(a.max()), 4)
    out["n"] = int(a.size)
    return out


def emit(name: str, args: argparse.Namespace, result: dict[str, Any], summary: str) -> None:
    """Print the JSON result then the one-line summary; also write the JSON to --out."""
    doc = {
        "bench": name,
        "command": "ruang bench " + " ".join(sys.argv[2:] if _is_cli() else sys.argv[1:]),
        "machine": machine_facts(),
        "result": result,
        "summary": summary,
    }
    text = json.dumps(doc, indent=2)
    print(text)
    print(summary, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def _is_cli() -> bool:
    return len(sys.argv) > 1 and sys.argv[1] == "bench"


def need(tool: str) -> str:
    """The path of a required program, or a clear error."""
    path = shutil.which(tool)
    if path is None:
        hint = " (apt-get install -y wrk)" if tool == "wrk" else ""
        raise SystemExit(f"this benchmark needs `{tool}` on PATH{hint}")
    return path
