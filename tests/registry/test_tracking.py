import mlflow

from registry.tracking import EXPERIMENT_KIND, configure


def test_experiment_opens_as_model_development_not_genai() -> None:
    experiment_id = configure("veracity-kind-check")
    assert configure("veracity-kind-check") == experiment_id  # idempotent
    tags = mlflow.get_experiment(experiment_id).tags
    assert tags[EXPERIMENT_KIND] == "custom_model_development"
