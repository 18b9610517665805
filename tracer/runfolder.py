"""The run folder: where one run's report, trace, model and raw recordings live.

Nothing in an existing run folder is overwritten unless the user asked for it (``--force``), and
every file is written atomically (temporary file, then rename) so an interrupted write never
leaves a half file that looks whole.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tracer import raw_files
from tracer.errors import CorruptRecording, RunFolderExists

DEFAULT_PARENT = Path("threadscope_runs")
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    atomic_write_pieces(path, (payload,))


def atomic_write_pieces(path: Path, pieces: Iterable[bytes]) -> None:
    """Write ``pieces`` one after another: a large file need not exist in memory all at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; a report is meant to be shared
        with os.fdopen(fd, "wb") as handle:
            for piece in pieces:
                handle.write(piece)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def trace_json(self) -> Path:
        return self.root / "trace.json"

    @property
    def model_json(self) -> Path:
        return self.root / "model.json"

    def raw_file(self, name: str) -> Path:
        return self.raw / name

    @classmethod
    def create(cls, out: Path | None, label: str, force: bool = False,
               with_raw: bool = True) -> RunFolder:
        """Make a new run folder: ``out`` if given, else a fresh timestamped one. ``with_raw``
        False makes a folder of run folders (``tracer run all``)."""
        if out is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "run"
            out = DEFAULT_PARENT / f"{safe}-{stamp}"
            suffix = 1
            while out.exists():
                suffix += 1
                out = DEFAULT_PARENT / f"{safe}-{stamp}-{suffix}"
        if out.exists() and not out.is_dir():
            raise RunFolderExists(f"{out} exists and is not a folder")
        if out.is_dir() and any(out.iterdir()):
            if not force:
                raise RunFolderExists(
                    f"{out} already holds files; choose another --out or add --force"
                )
            shutil.rmtree(out)
        folder = cls(out)
        (folder.raw if with_raw else folder.root).mkdir(parents=True, exist_ok=True)
        return folder

    @classmethod
    def existing(cls, root: Path) -> RunFolder:
        folder = cls(root)
        if not (folder.raw / raw_files.RUN).is_file():
            raise CorruptRecording(f"{root} is not a run folder (no raw/run.json)")
        return folder
