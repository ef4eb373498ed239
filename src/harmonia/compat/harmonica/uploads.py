"""What Harmonica's ``upload-custom-mape`` form may carry, checked before anything is
written: only the five MAPE file names, each small; a CSV dataset, or a zip of images whose
every member stays inside its folder (no zip-slip), within a size and a file count.
"""

from __future__ import annotations

import io
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

#: the files Harmonica's wrapper runs; any other uploaded name is ignored, as there
MAPE_FILES = ("monitor.py", "analyse.py", "plan.py", "execute.py", "manage.py")
MAX_MAPE_BYTES = 1024 * 1024


class UploadRefused(ValueError):
    """An upload refused before anything was written; the message says why."""


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on a zip dataset: its members, their total size once extracted, and the
    compression ratio (a small archive that inflates to gigabytes is refused)."""

    max_files: int = 10_000
    max_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0


def safe_member(name: str) -> PurePosixPath:
    """The member's path inside the target folder, or `UploadRefused` if it would leave it."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UploadRefused(f"the archive's member {name!r} would be written outside its folder")
    return path


def check_zip(data: bytes, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """The archive's regular file members, once every member is known to be safe."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise UploadRefused("the dataset is not a valid zip file") from error
    members = archive.infolist()
    if len(members) > limits.max_files:
        raise UploadRefused(f"the archive holds {len(members)} members; at most {limits.max_files}")
    total = 0
    files = []
    for member in members:
        safe_member(member.filename)
        mode = member.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UploadRefused(f"the archive's member {member.filename!r} is a symbolic link")
        if member.is_dir():
            continue
        total += member.file_size
        if member.compress_size and member.file_size / member.compress_size > limits.max_ratio:
            raise UploadRefused(f"the archive's member {member.filename!r} inflates too much")
        files.append(member)
    if total > limits.max_bytes:
        raise UploadRefused(f"the archive inflates to {total} bytes; at most {limits.max_bytes}")
    return files


def extract_zip(data: bytes, target: Path, limits: ZipLimits) -> int:
    """Extract a checked archive into ``target``, counting the bytes written against the
    limit (a member's declared size may lie); answers the number of files."""
    files = check_zip(data, limits)
    archive = zipfile.ZipFile(io.BytesIO(data))
    written = 0
    root = target.resolve()
    for member in files:
        destination = (root / safe_member(member.filename)).resolve()
        if not destination.is_relative_to(root):
            raise UploadRefused(f"the archive's member {member.filename!r} leaves its folder")
        destination.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, destination.open("wb") as sink:
            while chunk := source.read(1024 * 1024):
                written += len(chunk)
                if written > limits.max_bytes:
                    raise UploadRefused(f"the archive inflates past {limits.max_bytes} bytes")
                sink.write(chunk)
    return len(files)


def replace_tree(source: Path, target: Path) -> None:
    """``target`` made a fresh copy of ``source`` (symbolic links copied as links)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True)
