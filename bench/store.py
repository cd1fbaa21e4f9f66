"""The object store on S3 (issue #21): ingest of one cohort into S3-compatible storage on loopback
(SeaweedFS, else moto's server: tests/s3server.py) vs the same ingest into a folder; `store verify` on
S3 vs reading every object once through the same client (same threads); and the cost of a release
build from S3 (objects fetched, no hard links) vs from a folder.

    python bench/store.py --scale small --cohort c0009 --runs 3

Writes bench/results/store-<scale>.json (store-<scale>-all.json with ``--cohort all``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from common import WORK, synth_data, write_result  # noqa: E402
from s3server import S3Server  # noqa: E402


def _sync_pause() -> None:
    os.sync()
    time.sleep(1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small", choices=["small", "full"])
    ap.add_argument("--cohort", default="c0009", help="the cohort ingested (native and standard); all: every cohort")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from atlas_registry import release
    from atlas_registry.config import Workspace
    from atlas_registry.ingest import ingest_path
    from atlas_registry.objstore import open_store
    from atlas_registry.objstore.s3 import S3Store
    from atlas_registry.store_check import verify_store

    data = synth_data(args.scale)
    if args.cohort == "all":
        native, standard = data / "native", data / "standard"
    else:
        native, standard = data / "native" / args.cohort, data / "standard" / args.cohort
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="store-", dir=WORK))
    server = S3Server(tmp / "server").start()
    os.environ.update(server.env)
    os.environ["AWS_MAX_ATTEMPTS"] = "3"
    from atlas_registry.validate.runner import validate_path

    for root in (native, standard):  # warm-up: the delivery in the page cache for every timed ingest
        if root.is_dir():
            validate_path(root)
    samples: dict[str, list[float]] = {k: [] for k in ("folder", "s3", "verify", "read", "build_folder", "build_s3")}
    objects = size = 0
    try:
        for run in range(args.runs):
            wss = {
                "folder": Workspace(tmp / f"folder-{run}"),
                "s3": Workspace(tmp / f"s3-{run}", store=f"s3://{server.bucket}/bench-{uuid.uuid4().hex[:8]}"),
            }
            order = ["folder", "s3"] if run % 2 == 0 else ["s3", "folder"]  # neither always second (warm)
            for kind in order:
                ws = wss[kind]
                _sync_pause()
                t0 = time.perf_counter()
                ingest_path(ws, native)
                if standard.is_dir():
                    ingest_path(ws, standard)
                samples[kind].append(time.perf_counter() - t0)
                print(f"run {run}: ingest into {kind}: {samples[kind][-1]:.2f} s", flush=True)
            ws = wss["s3"]
            store = open_store(ws)
            assert isinstance(store, S3Store)
            inventory = store.inventory()
            objects, size = len(inventory), sum(inventory.values())
            t0 = time.perf_counter()
            result = verify_store(ws)
            samples["verify"].append(time.perf_counter() - t0)
            assert result.ok, result.to_text()
            client = store.client  # the same client, the same threads as verify

            def read(sha: str, store=store, client=client) -> int:
                body = client.get_object(Bucket=store.bucket, Key=store._object_key(sha))["Body"]
                n = 0
                while block := body.read(1 << 20):
                    n += len(block)
                return n

            t0 = time.perf_counter()
            with ThreadPoolExecutor(store.parallel) as pool:
                assert sum(pool.map(read, sorted(inventory))) == size
            samples["read"].append(time.perf_counter() - t0)
            print(f"run {run}: verify {samples['verify'][-1]:.2f} s, read {samples['read'][-1]:.2f} s", flush=True)
            for kind in ("folder", "s3"):
                _sync_pause()
                t0 = time.perf_counter()
                release.build(wss[kind], "R1.1", tmp / f"release-{kind}-{run}")
                samples[f"build_{kind}"].append(time.perf_counter() - t0)
            print(f"run {run}: build folder {samples['build_folder'][-1]:.2f} s, s3 {samples['build_s3'][-1]:.2f} s")
            for ws in wss.values():
                shutil.rmtree(ws.home, ignore_errors=True)
    finally:
        server.stop()
    med = {k: statistics.median(v) for k, v in samples.items()}
    out = {
        "scale": args.scale,
        "cohort": args.cohort,
        "server": server.kind,
        "runs": args.runs,
        "objects": objects,
        "bytes": size,
        "ingest_folder_s": med["folder"],
        "ingest_s3_s": med["s3"],
        "ingest_ratio": med["s3"] / med["folder"],
        "verify_s3_s": med["verify"],
        "read_all_s3_s": med["read"],
        "verify_ratio": med["verify"] / med["read"],
        "build_folder_s": med["build_folder"],
        "build_s3_s": med["build_s3"],
        "build_ratio": med["build_s3"] / med["build_folder"],
        "samples": samples,
        "load_average": os.getloadavg(),
    }
    p = write_result(f"store-{args.scale}" + ("-all" if args.cohort == "all" else ""), out)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {p}")
    for k in ("ingest_ratio", "verify_ratio", "build_ratio"):
        print(f"{k}: {out[k]:.2f}")


if __name__ == "__main__":
    main()
