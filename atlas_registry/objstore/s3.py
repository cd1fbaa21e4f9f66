"""The S3 store: objects in S3-compatible object storage, ``s3://BUCKET/PREFIX/ab/cdef…``.

The client is boto3 (docs/architecture.md says why). Endpoint, region and credentials come from
where every AWS tool reads them — ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``),
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``~/.aws/config``
and ``~/.aws/credentials`` — and never from the store URL: the registry and every message name the
bucket and prefix only, and any credential text a server echoes back is blanked from messages.

Writes are conditional: an object that is there is not rewritten (a PUT with ``If-None-Match: *``;
a server that answers 412 already has it; a HEAD first where a server answers 501 to the
condition). A PUT returns once the object is durable, so ingest records its rows only after every
PUT of the objects they point at returned. Checksums beyond what S3 requires are not sent
(``request_checksum_calculation="when_required"``: several S3-compatible servers refuse the newer
ones); what was stored is checked by reading it back (``store verify``, and every fetch).
Reads are checked against the object's name. A failure of the endpoint (refused, timed out, dropped,
credentials refused) is ``STO005``, one line, naming the store and what was being done.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import AtlasError
from .base import SHA_RE, Store, key_of

CHUNK = 1 << 20
_MISSING = ("404", "NoSuchKey", "NotFound")
_EXISTS = ("412", "PreconditionFailed", "409", "ConditionalRequestConflict")


#: what chooses the client: a change of any of these (a test, another profile) makes a new one
_CLIENT_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)
_CLIENTS: dict[tuple, tuple] = {}
_CLIENTS_LOCK = threading.Lock()


def _secrets() -> list[str]:
    """Credential values in the environment (blanked from every message)."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
    return [v for v in (os.environ.get(n) for n in names) if v and len(v) >= 4]


def redact(text: str, extra: list[str] | None = None) -> str:
    for secret in _secrets() + (extra or []):
        if secret:
            text = text.replace(secret, "***")
    return text


class S3Store(Store):
    remote = True
    parallel = 16

    def __init__(self, bucket: str, prefix: str = ""):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = None
        self._conditional = True  # If-None-Match: * until the server says it does not know it
        self._creds: list[str] = []  # credential values, blanked from messages

    # -- the client ------------------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            with _CLIENTS_LOCK:  # one client per configuration and process (boto3 clients are thread-safe)
                env = tuple(os.environ.get(n) for n in _CLIENT_ENV)
                if env not in _CLIENTS:
                    _CLIENTS[env] = self._make_client()
                self._client, self._creds = _CLIENTS[env]
        return self._client

    def _make_client(self):
        import boto3
        from botocore.config import Config

        session = boto3.session.Session()
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        s3_options: dict = {}
        if endpoint:  # S3-compatible systems (SeaweedFS, MinIO, Ceph) want bucket names in the path
            s3_options["addressing_style"] = "path"
        config = Config(
            connect_timeout=10,
            read_timeout=120,
            max_pool_connections=max(32, self.parallel * 2),
            s3=s3_options or None,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        region = session.region_name or "us-east-1"
        try:
            creds = session.get_credentials()
        except Exception as e:  # noqa: BLE001 - a malformed config file: one line, no secret
            raise AtlasError(
                "STO005", f"object store {self.url}: credentials could not be read ({type(e).__name__})"
            ) from None
        secrets: list[str] = []
        if creds is not None:
            frozen = creds.get_frozen_credentials()
            secrets = [v for v in (frozen.access_key, frozen.secret_key, frozen.token) if v]
        return session.client("s3", region_name=region, config=config), secrets

    def _object_key(self, sha: str) -> str:
        return f"{self.prefix}/{key_of(sha)}" if self.prefix else key_of(sha)

    def key(self, sha: str) -> str:
        return key_of(sha)

    def _fail(self, what: str, e: BaseException, sha: str | None = None) -> AtlasError:
        msg = redact(str(e) or type(e).__name__, self._creds)
        return AtlasError(
            "STO005",
            f"object store {self.url}: {what} failed ({msg}); check the endpoint (AWS_ENDPOINT_URL), "
            "the bucket and the credentials",
            path=key_of(sha) if sha else None,
        )

    def _damaged(self, sha: str, found: str) -> AtlasError:
        return AtlasError(
            "STO002", f"object store {self.url}: damaged: its bytes hash to {found[:12]}…", path=key_of(sha)
        )

    @staticmethod
    def _code(e: BaseException) -> str | None:
        resp = getattr(e, "response", None)
        if not isinstance(resp, dict):
            return None
        err = resp.get("Error", {}) or {}
        status = str((resp.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode", ""))
        return str(err.get("Code") or status)

    def _is(self, e: BaseException, codes: tuple[str, ...]) -> bool:
        resp = getattr(e, "response", None)
        if not isinstance(resp, dict):
            return False
        status = str((resp.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode", ""))
        return self._code(e) in codes or status in codes

    @staticmethod
    def _errors() -> tuple[type[BaseException], ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        return (BotoCoreError, ClientError)

    # -- the interface ---------------------------------------------------------------------------
    def size(self, sha: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._object_key(sha))
        except self._errors() as e:
            if self._is(e, _MISSING):
                return None
            raise self._fail("HEAD", e, sha) from None
        return int(head["ContentLength"])

    def has(self, sha: str) -> bool:
        return self.size(sha) is not None

    def put(self, data: bytes, sha: str | None = None, *, fsync: bool = True) -> str:
        """Upload ``data`` unless the object is there (:meth:`create`). ``fsync`` is moot: a PUT that
        returned is durable."""
        from ..store import sha256_bytes

        sha = sha or sha256_bytes(data)
        self.create(data, sha)
        return sha

    def create(self, data: bytes, sha: str) -> bool:
        """One PUT with ``If-None-Match: *``: True when it wrote the object, False when the server
        answered that it is there (412). Where the server does not know the condition (501), a HEAD
        first instead. Ingest HEADs the objects the registry already records (a re-run sends no bytes
        for them) and sends only this PUT for new ones."""
        if not self._conditional and self.has(sha):
            return False
        kw = {"IfNoneMatch": "*"} if self._conditional else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._object_key(sha), Body=data, **kw)
        except self._errors() as e:
            if self._is(e, _EXISTS):  # there already: the same bytes, not rewritten
                return False
            if kw and self._is(e, ("501", "NotImplemented")):
                self._conditional = False
                return self.create(data, sha)
            raise self._fail("PUT", e, sha) from None
        return True

    def adopt(self, path: str | os.PathLike, sha: str) -> None:
        """Upload the file (a conditional PUT: :meth:`put`), then remove it."""
        self.put(Path(path).read_bytes(), sha)
        os.unlink(path)

    def read(self, sha: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._object_key(sha))
            return obj["Body"].read()
        except self._errors() as e:
            if self._is(e, _MISSING):
                raise FileNotFoundError(2, "not in the store", key_of(sha)) from None
            raise self._fail("GET", e, sha) from None

    def _chunks(self, sha: str):
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._object_key(sha))
            body = obj["Body"]
            while block := body.read(CHUNK):
                yield block
        except self._errors() as e:
            if self._is(e, _MISSING):
                raise FileNotFoundError(2, "not in the store", key_of(sha)) from None
            raise self._fail("GET", e, sha) from None

    def inventory(self) -> dict[str, int]:
        found: dict[str, int] = {}
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
            for page in pages:
                for o in page.get("Contents", []) or []:
                    rest = o["Key"][len(start) :]
                    sha = rest.replace("/", "", 1)
                    if rest[2:3] == "/" and SHA_RE.match(sha):
                        found[sha] = int(o["Size"])
        except self._errors() as e:
            raise self._fail("LIST", e) from None
        return found

    def remove(self, sha: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(sha))
        except self._errors() as e:
            if self._is(e, _MISSING):
                return
            raise self._fail("DELETE", e, sha) from None

    def hash(self, sha: str, advance: Callable[[int], object] | None = None) -> str | OSError:
        h = hashlib.sha256()
        try:
            for block in self._chunks(sha):
                h.update(block)
                if advance:
                    advance(len(block))
        except OSError as e:
            return e
        return h.hexdigest()

    def fetch(self, sha: str, dest: Path) -> int:
        """Stream the object into ``dest`` (a temporary file renamed once its SHA-256 is checked)."""
        from ..store import OBJECT_MODE

        dest = Path(dest)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
        h, n = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as f:
                for block in self._chunks(sha):
                    h.update(block)
                    f.write(block)
                    n += len(block)
                os.fchmod(f.fileno(), OBJECT_MODE)
            if h.hexdigest() != sha:
                raise self._damaged(sha, h.hexdigest())
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return n

    def get(self, sha: str) -> bytes:
        from ..store import sha256_bytes

        data = self.read(sha)
        if sha256_bytes(data) != sha:
            raise self._damaged(sha, sha256_bytes(data))
        return data
