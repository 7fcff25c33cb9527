"""The results store: one folder of per-model runs, with an SQLite index for fast lookups.

Layout (the files are the truth; `index.sqlite` is rebuilt from them by `Store.reindex()`):

    STORE/index.sqlite
    STORE/models/<slug>/model.json                       name, weights id
    STORE/models/<slug>/base/<run_id>/meta.json          run metadata (tasks, judges, prompt hashes, ...)
    STORE/models/<slug>/base/<run_id>/generations.jsonl  unjudged records (id, category, task, instruction, response)
    STORE/models/<slug>/base/<run_id>/judged/<judge>.jsonl   judged records (DESIGN.md contract)
    STORE/models/<slug>/landscape/<run_id>/meta.json + landscape.json + plots (*.png)
    STORE/validations/<judge>.json                       the judge's newest `judge-validate` report

A run folder is built under a temporary name and renamed into place, and every file is written through a
temp file and `os.replace`, so a crash never leaves a half-written result that looks complete. Generation
and judging are separate: a run's generations are judged by any number of judges, each file keyed by the
judge's name and version, which is what lets the nightly job skip work it has already done.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safety_bench.jsonio import read_jsonl, write_json, write_jsonl
from safety_bench.provenance import now_iso, redact
from safety_bench.validation import UserError

SCHEMA = 1
INDEX_NAME = "index.sqlite"
BASE, LANDSCAPE = "base", "landscape"


class StoreError(UserError, RuntimeError):
    """The store is unusable or an entry is corrupt; the message names the path."""


def model_slug(name: str) -> str:
    """A folder name for a model: readable, and unique even when two names clean up the same way."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:60] or "model"
    if clean != name:
        clean += "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return clean


def content_key(*parts: Any) -> str:
    """A stable short key over JSON-serialisable parts (run ids, generation keys)."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8"))
    return h.hexdigest()[:20]


def judge_file_name(judge: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", judge) + ".jsonl"


@dataclass
class RunInfo:
    """One row of the index: a base-point run or a landscape run of a model."""

    model: str
    kind: str
    run_id: str
    path: Path
    created: str
    key: str = ""
    weights_id: str | None = None
    judges: dict[str, str] = field(default_factory=dict)  # judge name -> judge version


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path}: missing (partial entry)") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable ({exc})") from None


class Store:
    """A local results store. `Store(path)` creates the folder and index on first use; commands open
    stores with `remote.open_store`, which also takes fsspec URLs (a `RemoteStore` over a local mirror)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        text = str(root)
        if "://" in text and not text.startswith("file://"):
            raise StoreError(f"store {text.split('://')[0]}://…: Store() opens local folders; open a URL "
                             "with safety_bench.leaderboard.remote.open_store")
        self.root = Path(text.removeprefix("file://")).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "models").mkdir(exist_ok=True)
        self.index_path = self.root / INDEX_NAME
        fresh = not self.index_path.exists()
        with self._db() as db:
            db.executescript(
                "CREATE TABLE IF NOT EXISTS models (name TEXT PRIMARY KEY, slug TEXT, weights_id TEXT,"
                " updated TEXT);"
                "CREATE TABLE IF NOT EXISTS runs (run_id TEXT, model TEXT, kind TEXT, key TEXT, weights_id TEXT,"
                " created TEXT, path TEXT, PRIMARY KEY (model, kind, run_id));"
                "CREATE TABLE IF NOT EXISTS judgements (model TEXT, run_id TEXT, judge TEXT, judge_version TEXT,"
                " n INTEGER, created TEXT, PRIMARY KEY (model, run_id, judge));"
                "CREATE INDEX IF NOT EXISTS runs_key ON runs (model, kind, key);")
        if fresh and any((self.root / "models").iterdir()):
            self.reindex()

    def _publish(self, paths: Iterable[Path]) -> None:
        """Called with the files or folders each write has just put in place (a remote store uploads
        them); a local store has nothing more to do."""

    # ------------------------------------------------------------------ index
    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.index_path, timeout=60)

    def _model_dir(self, name: str) -> Path:
        return self.root / "models" / model_slug(name)

    def _ensure_model(self, name: str, weights_id: str | None) -> Path:
        folder = self._model_dir(name)
        info_path = folder / "model.json"
        info = _read_json(info_path) if info_path.exists() else {"name": name}
        if info.get("name") != name:
            raise StoreError(f"{info_path}: folder belongs to model {info.get('name')!r}, not {name!r}")
        if weights_id:
            info["weights_id"] = weights_id
        info["updated"] = now_iso()
        write_json(info_path, info)
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?)",
                       (name, folder.name, info.get("weights_id"), info["updated"]))
        self._publish([info_path])
        return folder

    def _index_run(self, db: sqlite3.Connection, model: str, kind: str, folder: Path, meta: Mapping[str, Any]) -> None:
        db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (meta["run_id"], model, kind, meta.get("key", ""), (meta.get("model") or {}).get("weights_id"),
                    meta.get("created", ""), str(folder.relative_to(self.root))))
        db.execute("DELETE FROM judgements WHERE model = ? AND run_id = ?", (model, meta["run_id"]))
        for judge, info in (meta.get("judges") or {}).items():
            db.execute("INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?, ?)",
                       (model, meta["run_id"], judge, str(info.get("version")), int(info.get("n", 0)),
                        info.get("created", "")))

    def reindex(self) -> list[str]:
        """Rebuild the SQLite index from the files; returns problems found (corrupt or partial runs)."""
        problems: list[str] = []
        with self._db() as db:
            db.executescript("DELETE FROM models; DELETE FROM runs; DELETE FROM judgements;")
            for folder in sorted((self.root / "models").iterdir()):
                if not folder.is_dir():
                    continue
                try:
                    info = _read_json(folder / "model.json")
                    name = str(info["name"])
                except (StoreError, KeyError, TypeError) as exc:
                    problems.append(f"{folder}: {exc}")
                    continue
                db.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?)",
                           (name, folder.name, info.get("weights_id"), info.get("updated", "")))
                for kind in (BASE, LANDSCAPE):
                    for run in sorted((folder / kind).glob("[!.]*")):
                        try:
                            meta = _read_json(run / "meta.json")
                            self._index_run(db, name, kind, run, meta)
                        except (StoreError, KeyError, TypeError) as exc:
                            problems.append(f"{run}: {exc}")
        return problems

    # ------------------------------------------------------------------ lookups
    def models(self) -> list[dict[str, Any]]:
        """Every model: name, slug, weights id, last update."""
        with self._db() as db:
            rows = db.execute("SELECT name, slug, weights_id, updated FROM models ORDER BY name").fetchall()
        return [{"name": r[0], "slug": r[1], "weights_id": r[2], "updated": r[3]} for r in rows]

    def runs(self, model: str, kind: str | None = None) -> list[RunInfo]:
        """A model's runs, newest first."""
        query = "SELECT run_id, kind, key, weights_id, created, path FROM runs WHERE model = ?"
        params: list[Any] = [model]
        if kind:
            query += " AND kind = ?"
            params.append(kind)
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created DESC, run_id", params).fetchall()
            judged = db.execute("SELECT run_id, judge, judge_version FROM judgements WHERE model = ?",
                                (model,)).fetchall()
        judges: dict[str, dict[str, str]] = {}
        for run_id, judge, version in judged:
            judges.setdefault(run_id, {})[judge] = version
        return [RunInfo(model=model, kind=r[1], run_id=r[0], key=r[2], weights_id=r[3], created=r[4],
                        path=self.root / r[5], judges=judges.get(r[0], {})) for r in rows]

    def find_run(self, model: str, kind: str, key: str) -> RunInfo | None:
        """The run of `model` made with generation key `key`, if one is stored."""
        for run in self.runs(model, kind):
            if run.key == key and (run.path / "meta.json").exists():
                return run
        return None

    def has_judgement(self, run: RunInfo, judge: str, version: str) -> bool:
        return run.judges.get(judge) == str(version) and (run.path / "judged" / judge_file_name(judge)).exists()

    # ------------------------------------------------------------------ writing
    def _write_run(self, model: str, kind: str, run_id: str, meta: dict[str, Any],
                   files: Mapping[str, Any], weights_id: str | None) -> RunInfo:
        """Build the run folder under a temp name, then rename it into place (replacing an older copy)."""
        parent = self._ensure_model(model, weights_id) / kind
        parent.mkdir(parents=True, exist_ok=True)
        final = parent / run_id
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=parent))
        try:
            for rel, content in files.items():
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, Path):
                    shutil.copy2(content, target)
                elif isinstance(content, list):
                    write_jsonl(target, content)
                else:
                    write_json(target, content)
            write_json(tmp / "meta.json", meta)
            if final.exists():
                old = parent / f".old-{run_id}-{os.getpid()}"
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with self._db() as db:
            self._index_run(db, model, kind, final, meta)
        self._publish([final])
        return self._run_info(model, kind, run_id)

    def _run_info(self, model: str, kind: str, run_id: str) -> RunInfo:
        for run in self.runs(model, kind):
            if run.run_id == run_id:
                return run
        raise StoreError(f"run {run_id} of {model!r} is not in the index")

    def add_base_run(self, model: str, generations: list[dict[str, Any]], meta: Mapping[str, Any],
                     judged: Mapping[str, list[dict[str, Any]]] | None = None, key: str | None = None,
                     judge_versions: Mapping[str, str] | None = None) -> RunInfo:
        """Store a base-point run: its generations, any judged records (by judge), and its metadata."""
        if not generations:
            raise StoreError(f"model {model!r}: a base run needs at least one record")
        key = key or content_key([(g.get("task"), g.get("id"), g.get("response")) for g in generations])
        run_id = key[:20]
        full = redact(dict(meta))
        full.update({"schema": SCHEMA, "kind": BASE, "run_id": run_id, "key": key,
                     "created": full.get("created") or now_iso(), "n_records": len(generations)})
        full.setdefault("model", {})
        full["model"] = {**full["model"], "name": model}
        files: dict[str, Any] = {"generations.jsonl": generations}
        judges: dict[str, Any] = {}
        for judge, rows in (judged or {}).items():
            files[f"judged/{judge_file_name(judge)}"] = rows
            version = (judge_versions or {}).get(judge) or _version_in(rows) or "unknown"
            judges[judge] = {"version": str(version), "n": len(rows), "created": now_iso()}
        # Re-adding the same generations (same key) with another judge, e.g. `safety-bench judge --store` on
        # an lm-eval run stored by `eval --store`, replaces the run folder: keep the other judges' verdicts.
        old = self._model_dir(model) / BASE / run_id
        if (old / "meta.json").is_file():
            old_meta = _read_json(old / "meta.json")
            if old_meta.get("key") == key:
                for judge, info in (old_meta.get("judges") or {}).items():
                    src = old / "judged" / judge_file_name(judge)
                    if judge not in judges and src.is_file():
                        files[f"judged/{judge_file_name(judge)}"] = src
                        judges[judge] = info
        full["judges"] = judges
        return self._write_run(model, BASE, run_id, full, files, full["model"].get("weights_id"))

    def add_judgement(self, run: RunInfo, judge: str, version: str, rows: list[dict[str, Any]]) -> RunInfo:
        """Add (or replace) one judge's records on a stored base run."""
        judged_path = run.path / "judged" / judge_file_name(judge)
        write_jsonl(judged_path, rows)
        meta = _read_json(run.path / "meta.json")
        meta.setdefault("judges", {})[judge] = {"version": str(version), "n": len(rows), "created": now_iso()}
        write_json(run.path / "meta.json", meta)
        with self._db() as db:
            self._index_run(db, run.model, BASE, run.path, meta)
        self._publish([judged_path, run.path / "meta.json"])
        return self._run_info(run.model, BASE, run.run_id)

    def add_landscape(self, model: str, folder: str | os.PathLike[str], meta: Mapping[str, Any] | None = None
                      ) -> RunInfo:
        """Copy a landscape output folder's `landscape.json` and plots into the store."""
        folder = Path(folder)
        source = folder / "landscape.json" if folder.is_dir() else folder
        landscape = _read_json(source)
        if not isinstance(landscape, dict) or "visage" not in landscape or "asr" not in landscape:
            raise StoreError(f"{source}: not a landscape.json (needs `asr` and `visage`)")
        body = {k: v for k, v in landscape.items() if k != "timing"}
        run_id = content_key(body)
        model_info = landscape.get("model") if isinstance(landscape.get("model"), dict) else {}
        full = redact(dict(meta or {}))
        full.update({"schema": SCHEMA, "kind": LANDSCAPE, "run_id": run_id, "key": full.get("key") or run_id,
                     "created": full.get("created") or now_iso(), "source": str(folder),
                     "landscape_kind": landscape.get("kind"), "task": landscape.get("task"),
                     "judges": {j: {"version": str((landscape.get("judge_versions") or {}).get(j) or "unknown"),
                                    "n": int(landscape.get("n_prompts") or 0)} for j in landscape.get("judges") or []},
                     "prompt_set_hash": landscape.get("prompt_set_hash"),
                     "software": landscape.get("software") or landscape.get("software_versions")})
        full["model"] = {"name": model, "weights_id": (full.get("model") or {}).get("weights_id")
                         or model_info.get("weights_id") or model_info.get("weights")}
        for run in self.runs(model, LANDSCAPE):
            if run.run_id == run_id and (run.path / "landscape.json").exists():
                return run  # already stored: publishing the same landscape again is a no-op
        files: dict[str, Any] = {"landscape.json": source}
        plot_dir = source.parent
        for png in sorted(plot_dir.glob("*.png")) + sorted(plot_dir.glob("plots/*.png")):
            files[f"plots/{png.name}"] = png
        return self._write_run(model, LANDSCAPE, run_id, full, files, full["model"]["weights_id"])

    # ------------------------------------------------------------------ judge validations (issue 14)
    def add_validation(self, report: Mapping[str, Any]) -> Path:
        """File a `judge-validate` report as `validations/<judge>.json` (the newest per judge), so the board
        can show how well a judge agrees with human labels next to the numbers it produced."""
        path = self.root / "validations" / (judge_file_name(str(report["judge"])).removesuffix(".jsonl") + ".json")
        write_json(path, {**report, "filed": now_iso()})
        self._publish([path])
        return path

    def validations(self) -> dict[str, dict[str, Any]]:
        """Filed validation reports by judge name; unreadable files are skipped."""
        out: dict[str, dict[str, Any]] = {}
        for path in sorted((self.root / "validations").glob("*.json")):
            try:
                report = _read_json(path)
                out[str(report["judge"])] = report
            except (StoreError, KeyError, TypeError):
                continue
        return out

    # ------------------------------------------------------------------ reading
    def load_base(self, run: RunInfo) -> dict[str, Any]:
        """A base run's metadata and judged records by judge; raises StoreError when corrupt."""
        meta = _read_json(run.path / "meta.json")
        judged: dict[str, list[dict[str, Any]]] = {}
        for judge in (meta.get("judges") or {}):
            path = run.path / "judged" / judge_file_name(judge)
            try:
                judged[judge] = read_jsonl(path)
            except FileNotFoundError:
                raise StoreError(f"{path}: missing (partial entry)") from None
            except (OSError, ValueError) as exc:
                raise StoreError(str(exc)) from None
        return {"meta": meta, "judged": judged}

    def load_generations(self, run: RunInfo) -> list[dict[str, Any]]:
        try:
            return read_jsonl(run.path / "generations.jsonl")
        except (OSError, ValueError) as exc:
            raise StoreError(f"{run.path}: generations unreadable ({exc})") from None

    def load_landscape(self, run: RunInfo) -> dict[str, Any]:
        meta = _read_json(run.path / "meta.json")
        landscape = _read_json(run.path / "landscape.json")
        if not isinstance(landscape, dict) or not isinstance(landscape.get("visage"), dict):
            raise StoreError(f"{run.path / 'landscape.json'}: no `visage` object")
        plots = sorted((run.path / "plots").glob("*.png"))
        return {"meta": meta, "landscape": landscape, "plots": plots}


def _version_in(rows: Iterable[Mapping[str, Any]]) -> str | None:
    for r in rows:
        if r.get("judge_version") is not None:
            return str(r["judge_version"])
    return None
