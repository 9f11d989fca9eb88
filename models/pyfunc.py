"""The served model: an MLflow pyfunc that answers questions about documents.

Logged as *models from code* (this file is the model's code, the weights are an artifact), so
loading a model never unpickles anything: the file is executed, and the weights come from
safetensors. Input rows: ``document``, ``question``. Output: ``answer``, ``confidence``,
``abstained``, ``routed_fraction``, and ``derivation``: the rule the model wrote over the
document's values when it computed the answer ("" when it answered directly), for audit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

from models.answer import Answerer

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "document"), ColSpec("string", "question")]),
    outputs=Schema(
        [
            ColSpec("string", "answer"),
            ColSpec("double", "confidence"),
            ColSpec("boolean", "abstained"),
            ColSpec("double", "routed_fraction"),
            ColSpec("string", "derivation"),
        ]
    ),
)


OUTPUT_COLUMNS = ["answer", "confidence", "abstained", "routed_fraction", "derivation"]


class VeracityAPR(PythonModel):
    def load_context(self, context: Any) -> None:
        self.answerer = Answerer.load(context.artifacts["apr"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        missing = {"document", "question"} - set(model_input.columns)
        if missing:
            raise ValueError(
                f"input is missing column(s) {sorted(missing)}; send document and question"
            )
        rows = []
        for doc, question in zip(model_input["document"], model_input["question"], strict=True):
            a = self.answerer(str(doc), str(question))
            rows.append(
                {
                    "answer": a.text,
                    "confidence": 1.0 - a.uncertainty,
                    "abstained": a.abstained,
                    "routed_fraction": a.routed_fraction,
                    "derivation": a.derivation,
                }
            )
        return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


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
