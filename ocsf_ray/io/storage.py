"""Whole files and directories on cluster storage or local disk, one API for both.

Everything ocsf-ray keeps between steps (model bundles, reports, window files) goes
through these functions, so an `--out` or `--model` given as a URI (s3://, gs://,
abfs://, hdfs://) is written by one node and read by any other: nothing assumes that
the driver's disk is shared with workers. A local path behaves as before.
"""

from __future__ import annotations

import json
import posixpath

import polars as pl
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ocsf_ray.io.sources import filesystem_for, join_uri, write_bytes


def is_uri(path: str) -> bool:
    """Whether `path` names cluster storage (`s3://...`) rather than a local path."""
    return "://" in path


def absolute(path: str) -> str:
    """A location other processes can use: URIs as given, local paths made absolute
    (Ray Train's storage and Serve replicas do not share this process's working directory)."""
    return path if is_uri(path) else posixpath.abspath(path)


def read_bytes(uri: str) -> bytes:
    """A whole file's bytes, local or on any pyarrow filesystem."""
    fs, inner, _ = filesystem_for(uri)
    with fs.open_input_stream(inner) as stream:
        return stream.read()


def read_parquet(uris: str | list[str], columns: list[str] | None = None) -> pl.DataFrame:
    """A Parquet file, the Parquet files under a directory, or a list of files, as one frame."""
    paths = [uris] if isinstance(uris, str) else list(uris)
    fs, _, _ = filesystem_for(paths[0])
    inner = [filesystem_for(p)[1] for p in paths]
    dataset = pads.dataset(inner[0] if isinstance(uris, str) else inner, filesystem=fs, format="parquet")
    return pl.from_arrow(dataset.to_table(columns=columns))


def parquet_schema(uri: str) -> pl.Schema:
    """A Parquet file's schema as Polars types, read from its footer alone."""
    fs, inner, _ = filesystem_for(uri)
    with fs.open_input_file(inner) as handle:
        return pl.from_arrow(pq.read_schema(handle).empty_table()).schema


def read_json(uri: str):
    """A JSON file's value, local or on any pyarrow filesystem."""
    return json.loads(read_bytes(uri))


def write_json(value, uri: str) -> None:
    """Pretty JSON; numpy scalars written as plain numbers."""
    write_bytes(json.dumps(value, indent=1, default=lambda v: v.item()).encode(), uri)


def exists(uri: str) -> bool:
    """Whether a file or directory exists there."""
    fs, inner, _ = filesystem_for(uri)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def children(uri: str) -> list[str]:
    """Names directly under a directory (none when it does not exist)."""
    fs, inner, _ = filesystem_for(uri)
    found = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    return sorted(posixpath.basename(info.path.rstrip("/")) for info in found)


def parquet_files(root: str) -> tuple[list[str], pafs.FileSystem]:
    """The Parquet files under a directory, recursively and sorted, as paths inside their
    filesystem, with that filesystem (`filesystem_for`); none when it does not exist."""
    fs, inner, _ = filesystem_for(root)
    infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True, allow_not_found=True))
    return sorted(i.path for i in infos if i.path.endswith(".parquet")), fs


def remove(uri: str) -> None:
    """Delete a file or a directory tree; nothing when it is absent."""
    fs, inner, _ = filesystem_for(uri)
    kind = fs.get_file_info(inner).type
    if kind == pafs.FileType.Directory:
        fs.delete_dir(inner)
    elif kind == pafs.FileType.File:
        fs.delete_file(inner)


def copy_tree(source: str, target: str, skip: tuple[str, ...] = ()) -> None:
    """Copy a directory's files (any filesystem to any other), leaving out the top-level
    entries named in `skip`; `target`'s other files are kept."""
    for name in children(source):
        if name in skip:
            continue
        src_fs, src, _ = filesystem_for(join_uri(source, name))
        dst_fs, dst, _ = filesystem_for(join_uri(target, name))
        if src_fs.get_file_info(src).type == pafs.FileType.Directory:
            dst_fs.create_dir(dst, recursive=True)
        else:
            dst_fs.create_dir(posixpath.dirname(dst), recursive=True)
        pafs.copy_files(src, dst, source_filesystem=src_fs, destination_filesystem=dst_fs)
