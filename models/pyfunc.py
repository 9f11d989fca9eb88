"""The served model: an MLflow pyfunc that answers questions about documents.

Logged as *models from code* (this file is the model's code, the weights are an artifact), so
loading a model never unpickles anything: the file is executed, and the weights come from
safetensors. Input rows: ``document``, ``question``. Output: ``answer``, ``confidence``,
``abstained``, ``routed_fraction``, ``derivation``: the rule the model wrote over the
document's values when it computed the answer ("" when it answered directly), for audit, and
``error``: why a row was not answered ("" when it was), ``guaranteed``: whether the certified
risk bound reaches the answer (false for a question worded unlike every calibration question:
answered, but without the promise), and ``novelty``, the share of its word pairs training never
wrote. A row the model cannot read (a document
over its positions, a missing text) answers ``unknown`` with its reason, and the rest of the
batch is answered: one bad row must not cost a client the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

from models.answer import Answer, Answerer

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "document"), ColSpec("string", "question")]),
    outputs=Schema(
        [
            ColSpec("string", "answer"),
            ColSpec("double", "confidence"),
            ColSpec("boolean", "abstained"),
            ColSpec("double", "routed_fraction"),
            ColSpec("string", "derivation"),
            ColSpec("string", "error"),
            ColSpec("boolean", "guaranteed"),
            ColSpec("double", "novelty"),
        ]
    ),
)


OUTPUT_COLUMNS = SIGNATURE.outputs.input_names()  # row()'s keys, in the signature's order


class VeracityAPR(PythonModel):
    def load_context(self, context: Any) -> None:
        self.answerer = Answerer.load(context.artifacts["apr"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        missing = {"document", "question"} - set(model_input.columns)
        if missing:
            raise ValueError(
                f"input is missing column(s) {sorted(missing)}; send document and question"
            )
        pairs = list(zip(model_input["document"], model_input["question"], strict=True))
        # one padded generation per batch of rows; each answer is what it would be alone, and
        # a row it cannot read (None, 42, {...}) is named in its own error
        answers = self.answerer.many(pairs)
        return pd.DataFrame([row(a) for a in answers], columns=OUTPUT_COLUMNS)


def row(a: Answer) -> dict[str, Any]:
    return {
        "answer": a.text,
        "confidence": 1.0 - a.uncertainty,
        "abstained": a.abstained,
        "routed_fraction": a.routed_fraction,
        "derivation": a.derivation,
        "error": a.error,
        "guaranteed": a.guaranteed,
        "novelty": a.novelty,
    }


def log_model(model_dir: str | Path, name: str = "apr", **kwargs: Any) -> Any:
    """Log a trained model directory as an MLflow LoggedModel; returns MLflow's ModelInfo."""
    example = pd.DataFrame(
        {"document": ["Sex: female."], "question": ["What is the patient's sex?"]}
    )
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(Path(__file__).resolve()),
        artifacts={"apr": str(model_dir)},
        signature=SIGNATURE,
        input_example=example,
        **kwargs,
    )


mlflow.models.set_model(VeracityAPR())
