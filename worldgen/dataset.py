"""Datasets on disk or S3: parquet shards plus a ``manifest.json`` written last.

Layout under the dataset URI::

    manifest.json                      spec hashes, seed, sizes, splits, schema, file sha256s, digest
    <domain>/records/part-00000.parquet
    <domain>/documents/part-00000.parquet
    <domain>/qa/part-00000.parquet

Records are generated in fixed blocks of ``BLOCK`` rows, each with its own seed
(``SeedSequence([seed, domain]).spawn``), and the digest is computed per block, so the content
and the digest are the same whatever the shard count or executor.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from infra import storage
from infra.errors import UserError
from worldgen import frames
from worldgen.domains import domain_names, get_domain
from worldgen.render import render_block
from worldgen.surface import held_out

BLOCK = 4096
TABLES = ("records", "documents", "qa")
SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
IN_FAMILY, HELD_OUT = "in-family", "held-out"
PHRASINGS = (IN_FAMILY, HELD_OUT)
FORMAT = 1
MAX_RECORDS = 50_000_000


class DatasetError(UserError, ValueError):
    """A dataset is missing, malformed, tampered with, or was asked for with bad arguments."""


@dataclass(frozen=True)
class DatasetRef:
    """What stages pass around: where a dataset lives and what its content hashes to."""

    uri: str
    digest: str


@dataclass(frozen=True)
class Plan:
    domain: str
    n: int
    seed: int
    blocks: tuple[int, ...]  # block indices this shard generates
    shard: int
    phrasing: str = IN_FAMILY


# --- splits ------------------------------------------------------------------------------


def assign_split(entity_ids: np.ndarray, seed: int) -> np.ndarray:
    """Split by entity: a seeded 64-bit mix of the entity id, so no entity straddles splits."""
    with np.errstate(over="ignore"):
        z = entity_ids.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    bounds = np.cumsum([share for _, share in SPLITS])[:-1]
    names = np.array([name for name, _ in SPLITS], dtype=object)
    return names[np.searchsorted(bounds, u, side="right")]


# --- generation --------------------------------------------------------------------------


def block_rngs(
    domain: str, seed: int, block: int
) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams for sampling and rendering one block, stable under any sharding."""
    child = np.random.SeedSequence([seed, get_domain(domain).seed_stream], spawn_key=(block,))
    sample_seq, render_seq = child.spawn(2)
    return np.random.default_rng(sample_seq), np.random.default_rng(render_seq)


def generate_block(
    domain: str, n: int, seed: int, block: int, phrasing: str = IN_FAMILY
) -> dict[str, pd.DataFrame]:
    """Records, documents and QA for one block; refuses to emit a record that breaks the model.
    ``phrasing``: documents and questions in the seed's in-family forms, or only held-out ones
    (the same records: the held-out-phrasing test reads the same entities another way)."""
    dom = get_domain(domain)
    start = block * BLOCK
    size = min(BLOCK, n - start)
    sample_rng, render_rng = block_rngs(domain, seed, block)
    cols = dom.spec.sample(size, sample_rng, offset=start)
    broken = {name: int(m.sum()) for name, m in dom.spec.violations(cols).items() if m.any()}
    if broken:
        raise AssertionError(f"{domain} block {block} breaks its own invariants: {broken}")
    records = frames.to_frame(dom.spec, cols)
    split = assign_split(cols[dom.spec.entity], seed)
    records["split"] = split
    rows = frames.to_rows(records, dom.spec)
    families, heldout = held_out(seed), phrasing == HELD_OUT
    docs, qas = render_block(dom.renderer, rows, render_rng, families, heldout)
    keys = records[["record_id", dom.spec.entity, "split"]].rename(
        columns={dom.spec.entity: "entity_id"}
    )
    documents = keys.merge(pd.DataFrame(docs), on="record_id")
    qa = keys.merge(pd.DataFrame(qas), on="record_id")
    return {"records": records, "documents": documents, "qa": qa}


def block_digest(tables: dict[str, pd.DataFrame]) -> str:
    """Content hash of one block's tables: column names, dtypes and values, not file bytes."""
    h = hashlib.sha256()
    for name in TABLES:
        frame = tables[name]
        for col in frame.columns:
            values = frame[col]
            h.update(f"{name}.{col}\n".encode())
            if values.dtype.kind in "biuf":
                h.update(np.ascontiguousarray(values.to_numpy()).tobytes())
            elif values.dtype.kind == "M":
                h.update(values.to_numpy().astype("datetime64[s]").astype(np.int64).tobytes())
            else:
                h.update("\x1f".join(map(str, values.tolist())).encode())
    return h.hexdigest()


def shard_plans(
    domain: str, n: int, seed: int, shards: int, phrasing: str = IN_FAMILY
) -> list[Plan]:
    n_blocks = -(-n // BLOCK)
    edges = np.linspace(0, n_blocks, min(shards, n_blocks) + 1).astype(int)
    return [
        Plan(domain, n, seed, tuple(range(edges[i], edges[i + 1])), i, phrasing)
        for i in range(len(edges) - 1)
    ]


def run_plan(plan: Plan, out: str) -> dict[str, Any]:
    """Generate one shard and write its three parquet files; returns file facts and block digests."""
    blocks = [generate_block(plan.domain, plan.n, plan.seed, b, plan.phrasing) for b in plan.blocks]
    files: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        frame = pd.concat([b[table] for b in blocks], ignore_index=True)
        rel = f"{plan.domain}/{table}/part-{plan.shard:05d}.parquet"
        data = storage.write_parquet(storage.join(out, rel), frame)
        files[rel] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows": len(frame),
            "bytes": len(data),
        }
    splits = pd.concat([b["records"]["split"] for b in blocks]).value_counts().to_dict()
    return {
        "files": files,
        "blocks": {b: block_digest(t) for b, t in zip(plan.blocks, blocks, strict=True)},
        "splits": {str(k): int(v) for k, v in splits.items()},
        "schema": {t: {c: str(d) for c, d in blocks[0][t].dtypes.items()} for t in TABLES},
    }


Mapper = Callable[[Callable[[Plan], dict[str, Any]], Iterable[Plan]], Iterator[dict[str, Any]]]


MAX_WORKERS = 256


@contextmanager
def process_pool(workers: int) -> Iterator[Mapper]:
    """A ``Mapper`` that runs shards on ``workers`` processes at once: generation is pure
    Python, so threads would share one core. Spawned, not forked: a parent holding threads
    (torch, a server) must not be copied mid-lock."""
    if not 1 <= workers <= MAX_WORKERS:
        raise DatasetError(f"--workers must be between 1 and {MAX_WORKERS}, got {workers}")
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool.map


def generate(
    domains: Iterable[str],
    n: int,
    seed: int,
    out: str,
    shards: int = 1,
    mapper: Mapper | None = None,
    phrasing: str = IN_FAMILY,
) -> DatasetRef:
    """Generate ``n`` records per domain into ``out``; ``mapper`` may run shards in parallel.
    ``phrasing`` (``in-family`` or ``held-out``) picks the surface forms (``worldgen.surface``);
    the manifest records which families the seed holds out."""
    domains = list(domains)
    check_arguments(domains, n, seed, shards, out)
    if phrasing not in PHRASINGS:
        raise DatasetError(f"phrasing must be one of {', '.join(PHRASINGS)}, got {phrasing!r}")
    storage.check_writable(out)
    if storage.exists(storage.join(out, "manifest.json")):
        raise DatasetError(
            f"{out} already holds a dataset; choose a new --out (datasets are never overwritten)"
        )
    plans = [p for d in domains for p in shard_plans(d, n, seed, shards, phrasing)]
    # a partial, not a lambda: a process pool's map must pickle it
    results = list((mapper or map)(partial(run_plan, out=out), plans))
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "seed": seed,
        "n_per_domain": n,
        "block": BLOCK,
        "shards": shards,
        "status": "generated",
        "phrasing": {"rendering": phrasing, "held_out": held_out(seed).as_dict()},
        "domains": {},
        "files": {},
    }
    for domain in domains:
        mine = [r for p, r in zip(plans, results, strict=True) if p.domain == domain]
        splits: dict[str, int] = {}
        for r in mine:
            for k, v in r["splits"].items():
                splits[k] = splits.get(k, 0) + v
        manifest["domains"][domain] = {
            "spec_hash": get_domain(domain).spec.spec_hash,
            "records": n,
            "splits": splits,
            "schema": mine[0]["schema"],
            "blocks": [r["blocks"][b] for r in mine for b in sorted(r["blocks"])],
            "rows": {
                t: sum(
                    f["rows"]
                    for r in mine
                    for rel, f in r["files"].items()
                    if rel.startswith(f"{domain}/{t}/")
                )
                for t in TABLES
            },
        }
        for r in mine:
            manifest["files"].update(r["files"])
    manifest["digest"] = dataset_digest(manifest)
    write_manifest(out, manifest)
    return DatasetRef(out, manifest["digest"])


# how a dataset is stored, not what it is: any shard count gives the same digest
NOT_DIGESTED = ("digest", "files", "shards", "status")


def dataset_digest(manifest: dict[str, Any]) -> str:
    """sha256 over every field of the manifest that says what the dataset is: each block's
    content digest (records, documents and QA), seed, size, spec hashes, splits, schema, and a
    variant's lineage. ``worldgen.integrity.verify_dataset`` recomputes it from the bytes."""
    body = {k: v for k, v in manifest.items() if k not in NOT_DIGESTED}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def write_manifest(out: str, manifest: dict[str, Any]) -> None:
    # Written last: a reader that finds a manifest finds every file it lists.
    storage.write_bytes(
        storage.join(out, "manifest.json"), json.dumps(manifest, indent=2, sort_keys=True).encode()
    )


def write_variant(
    source: str, domain: str, tables: dict[str, pd.DataFrame], out: str, note: dict[str, Any]
) -> DatasetRef:
    """A new dataset: ``source`` with ``domain``'s tables replaced (one shard), others copied."""
    manifest = read_manifest(source)
    if storage.exists(storage.join(out, "manifest.json")):
        raise DatasetError(f"{out} already holds a dataset; choose a new location")
    files = {}
    for rel, info in manifest["files"].items():
        if not rel.startswith(f"{domain}/"):
            storage.write_bytes(
                storage.join(out, rel), storage.read_bytes(storage.join(source, rel))
            )
            files[rel] = info
    for table in TABLES:
        rel = f"{domain}/{table}/part-00000.parquet"
        data = storage.write_parquet(storage.join(out, rel), tables[table])
        files[rel] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows": len(tables[table]),
            "bytes": len(data),
        }
    block_of = {t: tables[t]["record_id"].to_numpy() // BLOCK for t in TABLES}
    blocks = sorted(set(block_of["records"].tolist()))
    manifest["domains"][domain]["blocks"] = [
        block_digest({t: tables[t][block_of[t] == b] for t in TABLES}) for b in blocks
    ]
    manifest.update(files=files, derived_from=read_manifest(source)["digest"], variant=note)
    manifest["digest"] = dataset_digest(manifest)
    write_manifest(out, manifest)
    return DatasetRef(out, manifest["digest"])


# --- reading -----------------------------------------------------------------------------


def read_manifest(uri: str) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(
            storage.read_bytes(storage.join(uri, "manifest.json"))
        )
    except storage.NotFound as exc:
        raise DatasetError(
            f"no dataset at {uri}: manifest.json is missing (run `veracity generate`)"
        ) from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{uri}/manifest.json is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise DatasetError(f"{uri}: unsupported dataset format {manifest.get('format')!r}")
    return manifest


def ref(uri: str) -> DatasetRef:
    return DatasetRef(uri, read_manifest(uri)["digest"])


def load_table(uri: str, domain: str, table: str, verify: bool = True) -> pd.DataFrame:
    """One table of one domain, every shard concatenated in order, file hashes verified."""
    manifest = read_manifest(uri)
    if domain not in manifest["domains"]:
        raise DatasetError(
            f"{uri} has no domain {domain!r}; it has {', '.join(manifest['domains'])}"
        )
    rels = sorted(rel for rel in manifest["files"] if rel.startswith(f"{domain}/{table}/"))
    if not rels:
        raise DatasetError(f"{uri}: no {table} files for {domain}")
    parts = []
    for rel in rels:
        data = storage.read_bytes(storage.join(uri, rel))
        if verify:
            expected = manifest["files"][rel]["sha256"]
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected:
                raise DatasetError(
                    f"{uri}/{rel} was modified after it was written "
                    f"(sha256 {actual[:12]} != manifest {expected[:12]}); regenerate it"
                )
        parts.append(storage.parquet_from_bytes(data).to_pandas())
    return pd.concat(parts, ignore_index=True)


def load_qa(
    uri: str,
    split: str | None = None,
    domains: Iterable[str] | None = None,
    per_domain: int | None = None,
) -> pd.DataFrame:
    """QA pairs joined with their documents: what training and evaluation read.

    ``per_domain`` keeps the questions of each domain's first records up to that many: records
    are independent draws, so the head is a fair sample, and the same one for every reader."""
    manifest = read_manifest(uri)
    frames_: list[pd.DataFrame] = []
    for domain in domains or manifest["domains"]:
        qa = load_table(uri, domain, "qa")
        docs = load_table(uri, domain, "documents")[["record_id", "document"]]
        joined = qa.merge(docs, on="record_id", how="left")
        joined.insert(0, "domain", domain)
        if split is not None:
            joined = joined[joined["split"] == split]
        frames_.append(joined if per_domain is None else joined.head(per_domain))
    out = pd.concat(frames_, ignore_index=True)
    if split is not None and out.empty:
        raise DatasetError(f"{uri} has no rows in split {split!r}")
    return out


# --- arguments ---------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"^[A-Za-z0-9._\-/:]+$")


def check_arguments(domains: list[str], n: int, seed: int, shards: int, out: str) -> None:
    for d in domains:
        if d not in domain_names():
            raise DatasetError(
                f"unknown domain {d!r}; choose from {', '.join(domain_names())} or all"
            )
    if not 1 <= n <= MAX_RECORDS:
        raise DatasetError(f"--n must be between 1 and {MAX_RECORDS:,}, got {n}")
    if seed < 0:
        raise DatasetError(f"--seed must be >= 0, got {seed}")
    if shards < 1:
        raise DatasetError(f"--shards must be >= 1, got {shards}")
    if not out or ".." in out.split("/") or not _SAFE_NAME.match(out):
        raise DatasetError(
            f"--out {out!r} is not a safe path or s3:// URI (letters, digits, ._-/ only, no '..')"
        )
