"""MLflow as users browse it: the experiment says it holds classic model training, every run
names the data of each split (dataset inputs), and `mlflow ui` shows both in a real browser."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from browser import chromium, port_for_a_browser, screenshot, server, wait_for
from mlflow.tracking import MlflowClient

from conftest import make_tree
from mmfusion.data.description import describe_split
from mmfusion.data.layouts.folders import SplitFolderLayout
from mmfusion.tracking.experiment import (
    CUSTOM_MODEL_DEVELOPMENT,
    EXPERIMENT_KIND_TAG,
    ensure_experiment,
)
from mmfusion.tracking.loggers import dataset_input, log_inputs_once

MODALITIES = ["ct", "cxr", "cough"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """An empty MLflow store (made once: creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"


def test_a_new_experiment_is_created_as_classic_model_development(store):
    exp_id = ensure_experiment(store, "mmfusion", None)
    assert MlflowClient(store).get_experiment(exp_id).tags[EXPERIMENT_KIND_TAG] == (
        "custom_model_development"
    )


def test_an_existing_experiment_gets_the_kind_but_keeps_one_chosen_in_the_ui(store):
    client = MlflowClient(store)
    old = client.create_experiment("old")
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    assert ensure_experiment(store, "old", None) == old
    ensure_experiment(store, "chosen", None)
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == CUSTOM_MODEL_DEVELOPMENT
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_a_split_digest_names_its_content(tmp_path):
    """Equal bytes, equal digest, wherever the data lies; one changed file, another digest."""
    layout = SplitFolderLayout(make_tree(tmp_path / "a"))
    classes = layout.classes(MODALITIES)
    train = describe_split(
        "train", layout.samples("train", MODALITIES), MODALITIES, classes, layout.root, tmp_path
    )
    assert train.name == "a/train" and train.counts == {"Healthy": 4, "covid": 4}
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    copy = SplitFolderLayout(tmp_path / "b")
    same = describe_split(
        "train", copy.samples("train", MODALITIES), MODALITIES, classes, copy.root, tmp_path
    )
    assert same.digest == train.digest and same.source != train.source
    (tmp_path / "b" / "train" / "CT" / "covid" / "covidtrain0.png").write_bytes(b"changed")
    changed = describe_split(
        "train", copy.samples("train", MODALITIES), MODALITIES, classes, copy.root, tmp_path
    )
    assert changed.digest != train.digest


def test_parallel_jobs_logging_one_new_dataset_all_record_it(store, tmp_path):
    """Jobs of one sweep log the same split at the same moment: the store's check-then-insert
    races (one job got a UNIQUE-constraint error and died in CI); each job must end with the
    dataset as its input."""
    layout = SplitFolderLayout(make_tree(tmp_path / "tree"))
    classes = layout.classes(MODALITIES)
    split = describe_split(
        "train", layout.samples("train", MODALITIES), MODALITIES, classes, layout.root, tmp_path
    )
    client = MlflowClient(store)
    exp_id = ensure_experiment(store, "race", None)
    runs = [client.create_run(exp_id).info.run_id for _ in range(6)]
    start, errors = threading.Barrier(len(runs)), []

    def log(run_id: str) -> None:
        start.wait()
        try:
            log_inputs_once(MlflowClient(store), run_id, [dataset_input(split)])
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=log, args=(r,)) for r in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for run_id in runs:
        inputs = client.get_run(run_id).inputs.dataset_inputs
        assert [i.dataset.digest for i in inputs] == [split.digest]


@pytest.mark.slow
def test_a_training_run_logs_the_kind_and_its_three_datasets(quick_run):
    client = MlflowClient(quick_run["tracking_uri"])
    run = client.get_run(quick_run["run_id"])
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == CUSTOM_MODEL_DEVELOPMENT
    inputs = {
        next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
        for i in run.inputs.dataset_inputs
    }
    assert sorted(inputs) == ["testing", "training", "validation"]
    (root,) = (p for p in (quick_run["workdir"] / "data").glob("synthetic-*") if p.is_dir())
    for context, split in (("training", "train"), ("validation", "val"), ("testing", "test")):
        dataset = inputs[context]
        assert dataset.name == f"{root.name}/{split}"
        assert len(dataset.digest) == 12
        assert json.loads(dataset.source) == {"uri": str(root.resolve())}
        schema = json.loads(dataset.schema)
        assert schema["modalities"] == MODALITIES
        assert schema["classes"] == ["Healthy", "LungsCancer", "Pneumonia", "covid"]
        profile = json.loads(dataset.profile)
        assert profile["num_rows"] == int(run.data.tags[f"data.n_{split}"])
    assert len({d.digest for d in inputs.values()}) == 3


@pytest.fixture(scope="module")
def mlflow_ui(quick_run):
    port = port_for_a_browser()
    args = ["mlflow", "ui", "--backend-store-uri", quick_run["tracking_uri"]]
    args += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with server(args, f"http://127.0.0.1:{port}/", quick_run["workdir"]) as url:
        yield url


@pytest.mark.slow
def test_in_chromium_mlflow_ui_lists_the_run_with_its_datasets(mlflow_ui, quick_run):
    client = MlflowClient(quick_run["tracking_uri"])
    run = client.get_run(quick_run["run_id"])
    train = next(i.dataset for i in run.inputs.dataset_inputs if i.dataset.name.endswith("/train"))
    experiment = f"{mlflow_ui}#/experiments/{run.info.experiment_id}"
    with chromium(width=1400, height=900) as session:
        session.get(f"{experiment}/runs?workflowType=machine_learning")
        wait_for(lambda: run.info.run_name in session.page_source, 90, "the run in the runs table")
        wait_for(lambda: train.name in session.page_source, 30, "its dataset in the runs table")
        close_assistant(session)
        screenshot(session, "mlflow-runs.png")
        session.get(f"{experiment}/runs/{run.info.run_id}?workflowType=machine_learning")
        # the UI changes pages in place: wait for the run page itself, then for its datasets
        wait_for(lambda: "About this run" in session.page_source, 90, "the run page")
        wait_for(lambda: train.digest in session.page_source, 60, "the dataset on the run page")
        assert train.name in session.page_source
        close_assistant(session)
        screenshot(session, "mlflow-run.png")


def close_assistant(session) -> None:
    """Close MLflow's assistant panel, where it is open, for a screenshot of the page itself."""
    for button in session.find_elements(
        "css selector", "button[data-component-id='mlflow.assistant.chat_panel.close']"
    ):
        button.click()
