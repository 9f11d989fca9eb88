"""Training entry point: ``train(dataset_uri, config) -> TrainResult``.

One device trains in the caller's process. Several devices (or ``strategy="ddp"``) train in a
child process running ``python -m models.train``, which Lightning re-executes once per extra
rank; the caller never hosts DDP itself. Only rank 0 writes the exported model.

A finished run's model directory (``models.checkpoint``) holds weights as safetensors plus plain
JSON (config, tokenizer, calibrated routing threshold): loading it never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from lightning.fabric.plugins.environments import (
    LightningEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)
from lightning.pytorch.callbacks import ModelCheckpoint

from infra.settings import get_settings
from infra.storage import check_writable, write_bytes
from models.answer import Answerer
from models.apr import APRTransformer
from models.base_tokenizer import load_tokenizer
from models.checkpoint import export
from models.config import TrainConfig, TrainingInputError
from models.guide import (
    Guide,
    answer_constants,
    answer_dates,
    answer_decimals,
    answer_figures,
    answer_labels,
    answer_places,
    answer_twice,
    domain_marks,
    word_pairs,
)
from models.lit import APRModule, QADataModule
from models.precision import base_precision, training_device_type, training_precision
from models.tokenizer import SLOTS, Tokenizer
from worldgen.dataset import load_qa, read_manifest
from worldgen.domains import document_texts, domain_names, question_forms, question_keys
from worldgen.surface import Families, held_out


def model_fields(config: TrainConfig) -> dict[str, Any]:
    """The run's APRConfig fields: its size and overrides, a base's widths over them."""
    fields = config.model_fields()
    if config.base is None:
        return fields
    from models.hf import base_fields  # the [hf] extra: only a run with --base needs it

    return {**fields, **base_fields(config.base, config.base_tuning, fields["max_seq_len"])}


def model_config(config: TrainConfig, tok: Tokenizer, fields: dict[str, Any]) -> dict[str, Any]:
    """The run's fields, the pointer over the tokenizer's slots, vocabulary, mode."""
    pointer = {"n_slots": len(SLOTS), "slot_offset": tok.index[SLOTS[0]]} if tok.has_slots else {}
    fields = {**fields, **pointer, **config.model}
    if fields.get("clause_read"):
        # a word-level tokenizer of an older format has nothing to point at; a Hugging Face
        # base reads its own context
        if not tok.has_slots or fields.get("base") is not None:
            fields["clause_read"] = False
        else:
            fields["clause_breaks"] = tok.clause_breaks()
    return {**fields, "vocab_size": tok.vocab_size, "mode": config.mode}


@dataclass
class TrainResult:
    model_dir: str
    run_dir: str
    steps: int
    dataset_uri: str
    dataset_digest: str
    metrics: dict[str, float]
    route_threshold: float
    base_precision: str = "bf16"  # what the base stack ran in here (`models.precision`)
    node_rank: int = 0  # a worker node's result has no model: node 0 writes it


# how a run checkpoints and where it writes, not what it trains
# validation questions answered to set the routing threshold on what the model writes
ROUTING_QUESTIONS = 1024
_NOT_TRAINED = ("resume", "out", "checkpoint_every", "val_check_interval")


def trained_config(config: TrainConfig) -> dict[str, Any]:
    """What a run trains: its config, the model fields in force and the base's precision."""
    data = {k: v for k, v in asdict(config).items() if k not in _NOT_TRAINED}
    if config.base is None:  # runs without a base keep the folders they had
        del data["base"], data["base_tuning"]
    data["model"] = config.model_fields()
    data["base_precision"] = base_precision(training_device_type())
    return cast(dict[str, Any], json.loads(json.dumps(data, sort_keys=True, default=str)))


def run_dir_for(dataset_uri: str, config: TrainConfig) -> Path:
    """``--out``, or a folder per dataset and trained config: another config never overwrites
    a run's model nor resumes from its checkpoint."""
    if config.out:
        return Path(config.out)
    digest = read_manifest(dataset_uri)["digest"]
    key = hashlib.sha256(json.dumps(trained_config(config)).encode()).hexdigest()
    name = f"{digest[:12]}-{config.mode}-s{config.seed}-{key[:8]}"
    return get_settings().home / "runs" / name


def claim_run_dir(run_dir: Path, config: TrainConfig) -> None:
    """Record what the run in ``run_dir`` trains; refuse to resume one that trained otherwise."""
    record = run_dir / "train_config.json"
    wanted = trained_config(config)
    if config.resume and record.exists():
        had = json.loads(record.read_text())
        differ = sorted(k for k in wanted.keys() | had.keys() if had.get(k) != wanted.get(k))
        if differ:
            raise TrainingInputError(
                f"--resume: {run_dir} trained another config ({', '.join(differ)} differ); "
                "resume with the same options, or drop --resume to start over"
            )
    record.write_text(json.dumps(wanted, indent=2, sort_keys=True))


def dataset_guide(uri: str) -> Guide:
    """The guide of a model trained on the dataset at ``uri``: its domains, in-family phrasing
    and training split (``trained_guide``)."""
    manifest = read_manifest(uri)
    families = held_out(manifest["seed"]) if "phrasing" in manifest else None
    return trained_guide(list(manifest["domains"]), families, uri)


def trained_guide(
    domains: list[str], families: Families | None = None, uri: str | None = None
) -> Guide:
    """The question forms of the trained domains (the in-family phrasings of ``families``)
    with their keys, the words marking each one's documents (distinct against every domain the
    world model knows) and, from the training split of ``uri``, what each question's answers
    look like (``answer_labels``, ``answer_figures``, ``answer_dates``, ``answer_twice``,
    ``answer_places``, ``answer_constants``, ``answer_decimals``) and the word pairs its texts
    write (``word_pairs``: how novel a question is)."""
    marks = domain_marks({d: document_texts(d) for d in domain_names()})
    forms = {d: question_forms(d, families) for d in domains}
    keys = {d: question_keys(d, families) for d in domains}
    labels, figures, dated, pairs = {}, {}, {}, []
    twice, places, constants, decimals = {}, {}, {}, {}
    if uri is not None:
        train = load_qa(uri, "train", domains)
        labels = answer_labels(train["key"], train["answer"])
        figures = answer_figures(train["key"], train["answer"])
        dated = answer_dates(train["key"], train["answer"])
        texts = set(train["document"]) | set(train["question"])
        pairs = sorted(frozenset().union(*map(word_pairs, texts)))
        if "derivation" in train:
            derivations = train["derivation"].fillna("")
            twice = answer_twice(train["key"], derivations)
            places = answer_places(train["key"], derivations)
            constants = answer_constants(train["key"], derivations)
            decimals = answer_decimals(train["key"], train["answer"], derivations)
    shapes = (labels, figures, dated, pairs, twice, places, constants, decimals)
    return Guide(forms, {d: marks[d] for d in domains}, keys, *shapes)


def dataset_digest(uri: str) -> str:
    """The digest a run records. Whether the dataset may be trained on is the caller's to ask
    first (``validation.require_accepted``: the flow and ``veracity train`` do)."""
    return str(read_manifest(uri)["digest"])


def train(dataset_uri: str, config: TrainConfig) -> TrainResult:
    config.check()
    digest = dataset_digest(dataset_uri)
    run_dir = run_dir_for(dataset_uri, config)
    check_writable(str(run_dir))
    node = cluster_node(config)
    if node == 0:  # the master records what the run trains (a shared folder has one record)
        claim_run_dir(run_dir, config)
    if config.devices > 1 or config.num_nodes > 1 or config.strategy == "ddp":
        return _train_in_child(dataset_uri, config, run_dir, node)
    return _fit(dataset_uri, digest, config, run_dir)


def cluster_node(config: TrainConfig) -> int:
    """This node's rank among ``config.num_nodes``, as Lightning's cluster environments read
    it: torchrun's variables, SLURM's, or NODE_RANK with MASTER_ADDR and MASTER_PORT."""
    if config.num_nodes == 1:
        return 0
    n = config.num_nodes
    if TorchElasticEnvironment.detect():
        rank = TorchElasticEnvironment().node_rank()
    elif SLURMEnvironment.detect():
        rank = SLURMEnvironment().node_rank()
    elif {"NODE_RANK", "MASTER_ADDR", "MASTER_PORT"} <= os.environ.keys():
        rank = LightningEnvironment().node_rank()
    else:
        raise TrainingInputError(
            f"--num-nodes {n}: set NODE_RANK (0 on the master), MASTER_ADDR and MASTER_PORT on "
            "every node, or launch with torchrun or srun (docs/production.md)"
        )
    if not 0 <= rank < n:
        raise TrainingInputError(f"node rank {rank} is not one of the {n} nodes (0 to {n - 1})")
    return rank


def cpu_threads(config: TrainConfig) -> int:
    """Threads of one training process: OMP_NUM_THREADS where the launcher set it (torchrun
    does; nodes sharing a machine must), else the cores shared among this node's processes."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    return (
        int(given)
        if given.isdigit() and int(given) > 0
        else max(1, (os.cpu_count() or 1) // config.devices)
    )


def _node_file(name: str, node: int) -> str:
    """A file the run folder holds once per node (the folder may be shared by every node)."""
    return f"{name}.json" if node == 0 else f"{name}.node{node}.json"


def _train_in_child(uri: str, config: TrainConfig, run_dir: Path, node: int = 0) -> TrainResult:
    spec = run_dir / _node_file("train_request", node)
    spec.write_text(json.dumps({"dataset_uri": uri, "config": asdict(config)}))
    proc = subprocess.run([sys.executable, "-m", "models.train", str(spec)], env=os.environ.copy())
    result = run_dir / _node_file("result", node)
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(
            f"distributed training failed (exit {proc.returncode}); logs above, run dir {run_dir}"
        )
    return TrainResult(**json.loads(result.read_text()))


def _fit(uri: str, digest: str, config: TrainConfig, run_dir: Path) -> TrainResult:
    L.seed_everything(config.seed, workers=True, verbose=False)
    torch.set_num_threads(cpu_threads(config))
    tokenizer_file = run_dir / "tokenizer.json"
    tok = (
        load_tokenizer(tokenizer_file.read_text(), strict=True)
        if config.resume and tokenizer_file.exists()
        else None
    )
    fields = model_fields(config)
    data = QADataModule(
        uri,
        fields["max_seq_len"],
        config.batch_size,
        config.answer_only,
        tok,
        pack=config.pack,
        base=config.base,
    )
    tok = data.prepare_tokenizer()
    # every DDP rank writes it, and a resumed rank may read it: whole or not at all
    write_bytes(str(tokenizer_file), tok.to_json().encode())
    module = APRModule(
        model_config(config, tok, fields),
        lr=config.lr,
        max_steps=config.max_steps,
        base_tuning=config.base_tuning,
    )
    ckpt_dir = run_dir / "checkpoints"
    checkpoints = ModelCheckpoint(
        dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_train_steps=config.checkpoint_every
    )
    device_type = training_device_type()
    trainer = L.Trainer(
        accelerator="auto",
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=training_precision(config.precision, device_type),  # type: ignore[arg-type]
        max_steps=config.max_steps,
        val_check_interval=min(config.val_check_interval, config.max_steps),
        check_val_every_n_epoch=None,
        callbacks=[checkpoints],
        default_root_dir=str(run_dir),
        logger=False,
        enable_progress_bar=sys.stderr.isatty(),
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    last = ckpt_dir / "last.ckpt"
    trainer.fit(
        module, datamodule=data, ckpt_path=str(last) if config.resume and last.exists() else None
    )
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if not trainer.is_global_zero:
        worker = TrainResult(
            "",
            str(run_dir),
            trainer.global_step,
            uri,
            digest,
            metrics,
            float("nan"),
            node_rank=trainer.node_rank,
        )
        if trainer.local_rank == 0 and trainer.node_rank > 0:  # what this node's caller reads
            result_file = run_dir / _node_file("result", trainer.node_rank)
            result_file.write_text(json.dumps(asdict(worker), indent=2))
        return worker
    model = module.model.cpu().eval()
    threshold = calibrate(model, tok, data)
    guide = dataset_guide(uri)
    model_dir = export(model, tok, run_dir / "model", threshold, uri, digest, config, guide)
    base = base_precision(device_type)
    result = TrainResult(
        str(model_dir), str(run_dir), trainer.global_step, uri, digest, metrics, threshold, base
    )
    (run_dir / "result.json").write_text(json.dumps(asdict(result), indent=2))
    return result


@torch.no_grad()
def calibrate(model: APRTransformer, tok: Tokenizer, data: QADataModule) -> float:
    """Inference threshold: the score quantile that routes the target fraction of the answer
    tokens the model writes for validation questions.

    First on teacher-forced validation answers (the positions that predict answer tokens: those
    are the ones inference routes, harder than the document's), which sets the threshold the
    model first generates with; then on what it writes (``calibrate_on_written``). The two
    differ: a threshold from the references routed 0.098 of written tokens on the main job,
    not the 0.125 asked."""
    scores = []
    for batch in data.val_dataloader():
        out = model(batch["idx"])
        scores.append(out.est_scores[batch["answer_mask"] & (batch["targets"] >= 0)])
    model.calibrate_threshold(torch.cat(scores))
    return calibrate_on_written(model, tok, data.uri)


@torch.no_grad()
def calibrate_on_written(model: APRTransformer, tok: Tokenizer, uri: str) -> float:
    """The routing threshold that routes the target fraction of the answer tokens the model
    writes for (up to ``ROUTING_QUESTIONS``) validation questions. Twice: refinement under the
    first threshold changes a few of the tokens written, and so the scores the second reads."""
    qa = load_qa(uri, "validation")
    qa = qa.sample(n=min(ROUTING_QUESTIONS, len(qa)), random_state=0)
    pairs = list(zip(qa["document"], qa["question"], strict=True))
    answerer = Answerer(model, tok)  # reads each document once for both rounds
    for _ in range(2):
        threshold = model.calibrate_threshold(answerer.answer_scores(pairs))
    return threshold


def main(argv: list[str]) -> None:
    """Child-process entry (and what Lightning re-executes for each extra DDP rank)."""
    request = json.loads(Path(argv[0]).read_text())
    config = TrainConfig(**request["config"])
    uri = request["dataset_uri"]
    _fit(uri, dataset_digest(uri), config, run_dir_for(uri, config))


if __name__ == "__main__":
    main(sys.argv[1:])
