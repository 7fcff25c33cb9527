"""A results store at an fsspec URL (`s3://bucket/board`, `gs://…`, `az://…`, `memory://…`).

SQLite needs a local file, and object stores cannot rename a folder, so a remote store is a local
mirror plus the remote's files as the truth:

- opening pulls the remote's files into the mirror (`~/.cache/safety-bench/stores/<hash of the URL>`, or
  `SAFETY_BENCH_CACHE`), drops mirrored runs the remote no longer has, and rebuilds the index from the
  files; the index itself never travels;
- every write lands in the mirror first (atomically, as in a local store) and is then uploaded with the
  run's `meta.json` last: a run folder without `meta.json` is partial by the store's own rule, so a
  crash mid-upload leaves nothing that looks complete (the next reader reports it and skips it), and a
  replaced run's stale remote files are deleted after the new ones are up.

The nightly job's lock is the mirror's (one machine): run one nightly job per remote store. Credentials
come from fsspec's usual sources (environment, config files); a URL is never written into results.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from safety_bench.leaderboard.store import INDEX_NAME, Store, StoreError
from safety_bench.models import cache_dir
from safety_bench.provenance import redact_url

log = logging.getLogger("safety_bench.leaderboard")

COMPLETION_FILE = "meta.json"  # uploaded last; its presence makes a run complete
ALWAYS_REFRESH = {"meta.json", "model.json"}  # small files that change in place


def is_remote(location: str | os.PathLike[str]) -> bool:
    """True for a URL with a protocol other than `file://` (local paths and file URLs are local)."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def mirror_dir(url: str) -> Path:
    return cache_dir() / "stores" / hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


class RemoteStore(Store):
    """A `Store` whose files live at an fsspec URL; the index and a mirror of the files stay local."""

    def __init__(self, url: str, mirror: str | os.PathLike[str] | None = None) -> None:
        try:
            import fsspec
        except ImportError:  # pragma: no cover - fsspec comes with datasets
            raise StoreError("a store URL needs fsspec: pip install fsspec (plus s3fs, gcsfs, adlfs ...)") from None
        self.url = url.rstrip("/")
        try:
            self.fs, self.remote_root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise StoreError(f"store {redact_url(self.url)}: {exc}") from None
        local = Path(mirror) if mirror else mirror_dir(self.url)
        self._pull(local)
        super().__init__(local)
        self.reindex()

    # ------------------------------------------------------------------ remote -> mirror
    def _remote_files(self) -> dict[str, int]:
        """Relative path -> size of every file of the remote store (temp and index files left out)."""
        if not self.fs.exists(self.remote_root):
            self.fs.makedirs(self.remote_root, exist_ok=True)
            return {}
        root = self.remote_root.rstrip("/") + "/"
        files = {}
        for path, info in self.fs.find(self.remote_root, detail=True).items():
            rel = path[len(root):] if path.startswith(root) else path
            if rel == INDEX_NAME or any(part.startswith(".") for part in rel.split("/")):
                continue
            files[rel] = int(info.get("size") or 0)
        return files

    def _pull(self, local: Path) -> None:
        try:
            remote = self._remote_files()
        except OSError as exc:
            raise StoreError(f"store {redact_url(self.url)}: unreachable ({exc})") from None
        local.mkdir(parents=True, exist_ok=True)
        fetched = 0
        for rel, size in sorted(remote.items()):
            target = local / rel
            if target.is_file() and target.name not in ALWAYS_REFRESH and target.stat().st_size == size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.pull-{os.getpid()}")
            self.fs.get_file(self._remote(rel), str(tmp))
            os.replace(tmp, target)
            fetched += 1
        removed = self._drop_runs_missing_remotely(local, remote)
        log.info("store %s: %d file(s) fetched, %d stale run(s) dropped from the mirror %s",
                 redact_url(self.url), fetched, removed, local)

    @staticmethod
    def _drop_runs_missing_remotely(local: Path, remote: dict[str, int]) -> int:
        """Mirrored run folders (models/<slug>/<kind>/<run>) the remote lacks were deleted there."""
        runs_remote = {"/".join(rel.split("/")[:4]) for rel in remote if rel.count("/") >= 4}
        removed = 0
        for run in sorted((local / "models").glob("*/*/*")):
            rel = run.relative_to(local).as_posix()
            if run.is_dir() and not run.name.startswith(".") and rel not in runs_remote:
                shutil.rmtree(run, ignore_errors=True)
                removed += 1
        return removed

    # ------------------------------------------------------------------ mirror -> remote
    def _remote(self, rel: str) -> str:
        return f"{self.remote_root.rstrip('/')}/{rel}"

    def _publish(self, paths: Iterable[Path]) -> None:
        """Upload written files (folders recursively), completion files last; prune a replaced run."""
        files: list[Path] = []
        folders: list[Path] = []
        for p in paths:
            if p.is_dir():
                folders.append(p)
                files += sorted(f for f in p.rglob("*") if f.is_file())
            elif p.is_file():
                files.append(p)
        files.sort(key=lambda f: f.name == COMPLETION_FILE)
        try:
            for f in files:
                rel = f.relative_to(self.root).as_posix()
                self.fs.makedirs(self._remote(str(Path(rel).parent.as_posix())), exist_ok=True)
                self.fs.put_file(str(f), self._remote(rel))
            for folder in folders:
                self._prune(folder)
        except OSError as exc:
            raise StoreError(f"store {redact_url(self.url)}: upload failed ({exc}); the local mirror "
                             f"{self.root} holds the result and the next write or open retries") from None

    def _prune(self, folder: Path) -> None:
        """Delete remote files of a run folder that its new local version no longer has."""
        rel_folder = folder.relative_to(self.root).as_posix()
        remote_folder = self._remote(rel_folder)
        if not self.fs.exists(remote_folder):
            return
        keep = {f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()}
        prefix = remote_folder.rstrip("/") + "/"
        for path in self.fs.find(remote_folder):
            if path.startswith(prefix) and path[len(prefix):] not in keep:
                self.fs.rm_file(path)

    def describe(self) -> dict[str, Any]:
        return {"url": redact_url(self.url), "mirror": str(self.root)}


def open_store(location: str | os.PathLike[str], mirror: str | os.PathLike[str] | None = None) -> Store:
    """The store at a local folder or an fsspec URL: the one way commands open a store."""
    if is_remote(location):
        return RemoteStore(str(location), mirror)
    return Store(location)
