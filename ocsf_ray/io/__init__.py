"""OCSF ingestion: paths in, canonical events per family out (see DESIGN.md)."""

from ocsf_ray.io.canonical import canonicalize, decimal_to_hex128, epoch_ms, unique_uids
from ocsf_ray.io.flatten import ShapeConflict, flatten
from ocsf_ray.io.records import flatten_record, frame_records
from ocsf_ray.io.ingest import CanonicalArchive, FamilyEvents, ingest_chunk, read_events
from ocsf_ray.io.options import IngestOptions
from ocsf_ray.io.readers import Chunk, plan_chunks, read_chunk
from ocsf_ray.io.sources import InputError, InputFile, resolve_inputs

__all__ = [
    "CanonicalArchive", "Chunk", "FamilyEvents", "IngestOptions", "InputError", "InputFile",
    "canonicalize", "decimal_to_hex128", "epoch_ms", "flatten", "ingest_chunk", "plan_chunks",
    "read_chunk", "read_events", "resolve_inputs", "ShapeConflict", "flatten_record", "frame_records",
    "unique_uids",
]
