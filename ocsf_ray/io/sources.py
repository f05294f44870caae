"""Resolve user-given inputs (files, directories, globs, URIs) into readable OCSF files.

Everything here runs on the driver before any Ray work starts, so a typo in a path
or an unsupported format fails in a second with a one-line reason instead of after a
cluster has been spun up.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import posixpath
from dataclasses import dataclass

import pyarrow.fs as pafs

FORMATS = {".parquet": "parquet", ".json": "json", ".jsonl": "ndjson", ".ndjson": "ndjson"}


class InputError(ValueError):
    """An input path that cannot be read; the message is meant for the console as is."""


@dataclass(frozen=True)
class InputFile:
    """One readable file: its URI as the user's filesystem sees it, format and size."""

    uri: str
    format: str  # parquet | json | ndjson
    compressed: bool
    size: int
    relative: str = ""  # path below the inputs' common folder: the name in surrogate uids

    @property
    def name(self) -> str:
        return posixpath.basename(self.uri.rstrip("/"))


def detect_format(path: str) -> tuple[str, bool] | None:
    """(format, gzip-compressed) from a file name, or None when not an OCSF input."""
    name = path.lower()
    compressed = name.endswith(".gz")
    if compressed:
        name = name[:-3]
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt, compressed
    return None


def filesystem_for(path: str | os.PathLike) -> tuple[pafs.FileSystem, str, str]:
    """(filesystem, path inside it, prefix to rebuild a URI) for a local path or URI."""
    path = os.fspath(path)
    if "://" in path:
        fs, inner = pafs.FileSystem.from_uri(path)
        return fs, inner, path[: path.index("://") + 3]
    return pafs.LocalFileSystem(), posixpath.abspath(path), ""


def _as_input(info: pafs.FileInfo, prefix: str) -> InputFile | None:
    detected = detect_format(info.path)
    if detected is None or posixpath.basename(info.path).startswith((".", "_")):
        return None
    return InputFile(prefix + info.path, detected[0], detected[1], info.size or 0)


def resolve_inputs(paths: list[str]) -> list[InputFile]:
    """Expand files, directories (recursively) and globs into a sorted list of inputs.

    Hidden and underscore-prefixed files are skipped (Spark/Hadoop markers such as
    ``_SUCCESS``); so are files of other formats inside a directory. A path that names
    nothing, or a file of an unknown format named explicitly, raises InputError.
    """
    if not paths:
        raise InputError("no input given")
    found: dict[str, InputFile] = {}
    for path in paths:
        fs, inner, prefix = filesystem_for(path)
        if any(ch in inner for ch in "*?["):
            base = inner[: min(inner.index(ch) for ch in "*?[" if ch in inner)]
            base = base.rsplit("/", 1)[0] or "/"
            infos = [
                i for i in fs.get_file_info(pafs.FileSelector(base, recursive=True))
                if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, inner)
            ]
            if not infos:
                raise InputError(f"no file matches {path}")
        else:
            info = fs.get_file_info(inner)
            if info.type == pafs.FileType.NotFound:
                raise InputError(f"no such file or directory: {path}")
            if info.type == pafs.FileType.Directory:
                infos = [
                    i for i in fs.get_file_info(pafs.FileSelector(inner, recursive=True))
                    if i.type == pafs.FileType.File
                ]
            else:
                if detect_format(inner) is None:
                    raise InputError(
                        f"unknown format: {path} (expected {', '.join(FORMATS)}, optionally .gz)"
                    )
                infos = [info]
        inputs = [f for f in (_as_input(i, prefix) for i in infos) if f is not None]
        if not inputs:
            raise InputError(f"no OCSF input ({', '.join(FORMATS)}) under {path}")
        for f in inputs:
            found[f.uri] = f
    files = [found[k] for k in sorted(found)]
    return [dataclasses.replace(f, relative=name) for f, name in zip(files, _relative_names(files))]


def _relative_names(files: list[InputFile]) -> list[str]:
    """Each file's path below the folder all inputs share (its base name when alone), so
    two `events.jsonl` in two folders keep distinct names."""
    paths = [f.uri.split("://", 1)[-1] for f in files]
    if len(paths) == 1:
        return [posixpath.basename(paths[0])]
    root = posixpath.commonpath([posixpath.dirname(p) for p in paths])
    return [posixpath.relpath(p, root) if root else p for p in paths]


def open_input(uri: str):
    """Open a URI or local path for binary reading, decompressing gzip transparently."""
    fs, inner, _ = filesystem_for(uri)
    compression = "gzip" if uri.lower().endswith(".gz") else None
    return fs.open_input_stream(inner, compression=compression)


def write_parquet(frame, uri: str) -> None:
    """Write a Polars frame to a local path or URI, creating parent directories."""
    import pyarrow.parquet as pq

    fs, inner, _ = filesystem_for(uri)
    fs.create_dir(posixpath.dirname(inner), recursive=True)
    with fs.open_output_stream(inner) as stream:
        pq.write_table(frame.to_arrow(), stream, compression="zstd")


def write_bytes(data: bytes, uri: str) -> None:
    """Write a small file (JSON, GraphML, PNG) to a local path or URI, parents created."""
    fs, inner, _ = filesystem_for(uri)
    fs.create_dir(posixpath.dirname(inner), recursive=True)
    with fs.open_output_stream(inner) as stream:
        stream.write(data)


def join_uri(root: str, *parts: str) -> str:
    return posixpath.join(root.rstrip("/"), *parts) if "://" in root else posixpath.join(
        posixpath.abspath(root), *parts
    )
