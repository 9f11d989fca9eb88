"""A dataset is what its digest says: re-hash what is about to be read, before trusting it.

The manifest records every file's sha256, each block's content digest (its records, documents
and QA) and the dataset digest over all of that and every other field that says what the
dataset is (:func:`worldgen.dataset.dataset_digest`). A verdict of the gate is bound to that
digest. Whoever can write the folder can also rewrite a shard and its sha256 in the manifest,
or edit a field by hand; :func:`verify_dataset` recomputes everything from the bytes, so a
changed file or field can never ride on a verdict given to other content.
"""

from __future__ import annotations

import pandas as pd

from worldgen.dataset import (
    BLOCK,
    TABLES,
    DatasetError,
    block_digest,
    dataset_digest,
    load_table,
    read_manifest,
)


class DatasetTampered(DatasetError):
    """The bytes or the manifest's fields do not hash to the digest the manifest states."""


def block_digests(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Each block's content digest, recomputed from one domain's tables (rows by record id)."""
    block_of = {t: tables[t]["record_id"].to_numpy() // BLOCK for t in TABLES}
    blocks = sorted(set(block_of["records"].tolist()))
    return [block_digest({t: tables[t][block_of[t] == b] for t in TABLES}) for b in blocks]


def content_mismatch(uri: str, domain: str, tables: dict[str, pd.DataFrame]) -> str | None:
    """Why ``domain``'s tables are not the content the manifest's digest covers, if they are not."""
    if block_digests(tables) != read_manifest(uri)["domains"][domain]["blocks"]:
        return (
            f"{uri}: the {domain} records, documents or QA differ from the content its digest "
            "covers (changed after generation, its file hashes rewritten to match)"
        )
    return None


def verify_dataset(uri: str) -> str:
    """The dataset's digest, after re-hashing every file and field; ``DatasetTampered`` if not."""
    manifest = read_manifest(uri)
    fix = "generate it again with `veracity generate` (datasets are never repaired in place)"
    if dataset_digest(manifest) != manifest.get("digest"):
        raise DatasetTampered(
            f"{uri}: the manifest's fields do not hash to its digest (edited by hand, or "
            f"written by an older Veracity); {fix}"
        )
    for domain in manifest["domains"]:
        tables = {t: load_table(uri, domain, t) for t in TABLES}  # each file's sha256 checked
        problem = content_mismatch(uri, domain, tables)
        if problem:
            raise DatasetTampered(f"{problem}; {fix}")
    return str(manifest["digest"])
