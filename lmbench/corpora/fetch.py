"""Find a corpus file: the offline mirror, then the cache, then the canonical URLs in order.

Every file is checked against its published sha256 (sha1 where only that is published) before
use; a downloaded archive is also checked against its published md5/sha1. Downloads land in a temporary file and are renamed into place only once
verified, so an interrupted or corrupted download never poisons the cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import DataError
from .specs import CorpusFile, Source

DATA_ENV = "LMBENCH_DATA"
TIMEOUT_S = 60


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lmbench" / "corpora"


def mirror_root(data_dir: str | os.PathLike | None = None) -> Path | None:
    chosen = data_dir or os.environ.get(DATA_ENV)
    return Path(chosen).expanduser() if chosen else None


def digest(data_or_path: bytes | Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    if isinstance(data_or_path, bytes):
        h.update(data_or_path)
    else:
        with open(data_or_path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Located:
    path: Path
    origin: str  # "mirror", "cache" or the URL it was downloaded from


def locate(
    file: CorpusFile, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Located:
    """Return a verified local copy of `file`, downloading it into the cache if needed."""
    algorithm, expected = file.checksum
    mirror = mirror_root(data_dir)
    if mirror is not None:
        candidate = mirror / file.path
        if candidate.exists():
            actual = digest(candidate, algorithm)
            if actual != expected:
                raise DataError(
                    f"{candidate}: {algorithm} {actual} does not match the published {expected}; "
                    f"the mirror copy is corrupted or a different version: replace it"
                )
            return Located(candidate, "mirror")
    cached = cache_root() / file.path
    if cached.exists() and digest(cached, algorithm) == expected:
        return Located(cached, "cache")
    if not download:
        raise DataError(f"{file.path}: not in the mirror ({mirror}) nor the cache ({cached})")
    failures = []
    for source in file.sources:
        try:
            data = _fetch_verified(source, file)
        except (OSError, ValueError, DataError, tarfile.TarError, zipfile.BadZipFile) as exc:
            failures.append(f"{source.url}: {exc}")
            continue
        cached.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(cached, data)
        return Located(cached, source.url)
    where = f"; mirror {mirror} has no {file.path}" if mirror else ""
    raise DataError(
        f"could not obtain {file.path}{where}. Tried: " + " | ".join(failures) + f". "
        f"Download it by hand into {cached.parent}, or point {DATA_ENV} (or --data-dir) "
        f"at a mirror laid out as <dir>/{file.path}"
    )


def _fetch_verified(source: Source, file: CorpusFile) -> bytes:
    payload = _download(source.url)
    for algorithm in ("md5", "sha1"):
        expected = getattr(source, algorithm)
        if expected and digest(payload, algorithm) != expected:
            raise DataError(f"{algorithm} {digest(payload, algorithm)} != published {expected}")
    data = _extract(payload, source) if source.member else payload
    algorithm, expected = file.checksum
    actual = digest(data, algorithm)
    if actual != expected:
        raise DataError(f"{algorithm} {actual} != published {expected}")
    return data


@lru_cache(maxsize=4)  # the three WikiText-2 splits come from one zip: fetch it once
def _download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "lmbench"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return response.read()


def forget_downloads() -> None:
    """Drop the archives `_download` keeps for the files still to come from them."""
    _download.cache_clear()


def _extract(payload: bytes, source: Source) -> bytes:
    wanted = source.member.removeprefix("./")
    if zipfile.is_zipfile(io.BytesIO(payload)):
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            for name in archive.namelist():
                if name.removeprefix("./") == wanted:
                    return archive.read(name)
    else:
        with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
            for member in archive.getmembers():
                if member.name.removeprefix("./") == wanted and member.isfile():
                    return archive.extractfile(member).read()
    raise DataError(f"archive has no member {wanted}")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
