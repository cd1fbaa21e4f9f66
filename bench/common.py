"""Helpers shared by the benchmark scripts: timing, synthetic data on demand, results files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work"
RESULTS = ROOT / "bench" / "results"
CLI = [sys.executable, "-m", "atlas_registry"]


def timed(fn, runs: int = 3) -> tuple[float, list[float]]:
    """Median wall time of ``runs`` calls of ``fn`` (seconds) and every sample."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), samples


def synth_data(scale: str, seed: int = 0) -> Path:
    """The synthetic archive for ``scale``, generated once and reused across benchmark runs."""
    out = WORK / f"synth-{scale}-{seed}"
    if not (out / ".complete").exists():
        subprocess.run(CLI + ["synth", str(out), "--scale", scale, "--seed", str(seed)], check=True)
        (out / ".complete").write_text("ok\n")
    return out


def machine() -> dict:
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":")[1].strip()
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": name,
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **data,
    }
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return p
