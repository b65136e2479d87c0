"""Hyperparameter search: mmfusion's Optuna sweeper through the real Hydra multirun path."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from conftest import make_tree, run_cli


@pytest.mark.slow
def test_three_trial_search_survives_a_crashing_trial_and_logs_the_best(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 3, "valid": 2, "test": 2})
    storage = f"sqlite:///{tmp_path}/optuna.db"
    # an existing study (resumed by the sweeper) whose first trial crashes: batch size 0
    study = optuna.create_study(study_name="tiny", storage=storage, direction="maximize")
    for batch_size in (0, 4, 4):
        study.enqueue_trial({"data.batch_size": batch_size})
    space = (
        "hydra.sweeper.params={model.optimizer.lr:'tag(log, interval(1e-4, 1e-2))',"
        "fusion.head.dropout:'interval(0.0, 0.5)',data.batch_size:'choice(0, 4)',"
        "backbone:'choice(simple_cnn)',data.decoding.image_size:'choice(16)',"
        "model.optimizer.weight_decay:'choice(0.0)'}"
    )
    result = run_cli(
        [
            "mmfusion",
            "hparams_search=optuna",
            "fusion=intermediate",
            "data=folder",
            f"data.root={tree}",
            "trainer.max_epochs=1",
            "data.decode_workers=1",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.study_name=tiny",
            space,
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best trial" in result.stdout

    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert all(0 <= t.params["fusion.head.dropout"] <= 0.5 for t in trials)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("mmfusion").experiment_id])
    parent = next(r for r in runs if "mmfusion.sweep_dir" in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    by_trial = {r.data.params["callbacks/optuna_pruning/trial_number"]: r for r in children}
    # trial 0's batch size 0 is refused by the option check before its run exists (one line,
    # nothing created): the study records it FAILED, the MLflow experiment holds no run of it
    assert sorted(by_trial) == ["1", "2"]
    assert by_trial["1"].info.status == by_trial["2"].info.status == "FINISHED"
    best = optuna.load_study(study_name="tiny", storage=storage).best_trial
    assert parent.data.params["best/model.optimizer.lr"] == str(best.params["model.optimizer.lr"])
    assert parent.data.metrics["best_value"] == pytest.approx(best.value)
    results = Path(parent.data.tags["mmfusion.sweep_dir"], "optimization_results.yaml")
    saved = yaml.safe_load(results.read_text())
    assert saved["best_trial"] == best.number and saved["trials"] == {"COMPLETE": 2, "FAIL": 1}


def test_a_job_reports_to_and_is_pruned_by_the_sweepers_stored_trial(tmp_path):
    """What the pruning callback does inside a job: rebuild the running trial from storage."""
    from mmfusion.training.search import pruned_trial

    storage = f"sqlite:///{tmp_path}/optuna.db"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    good = study.ask()
    for epoch, value in enumerate((0.8, 0.9)):
        good.report(value, epoch)
    study.tell(good, 0.9)
    running = study.ask()  # what the sweeper hands to the job, by number only

    trial = pruned_trial(storage, "s", running.number, pruner)
    trial.report(0.2, step=0)
    assert trial.should_prune()
    stored = optuna.load_study(study_name="s", storage=storage).trials[running.number]
    assert stored.intermediate_values == {0: 0.2}
