"""Prediction from files: CLI, folder / manifest CSVs and MLflow model agree with training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import folder_job, make_tree, run_cli, run_ok
from mmfusion.cli.predict import main
from mmfusion.errors import ConfigError
from mmfusion.serving.predictor import Predictor


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """One tiny intermediate-fusion run with modality dropout, logged to MLflow."""
    workdir = tmp_path_factory.mktemp("predict")
    tree = make_tree(workdir / "tree", per_split={"train": 3, "valid": 1, "test": 2})
    model = ["backbone=simple_cnn", "fusion=intermediate", "model.modality_dropout=0.3"]
    tiny = ["trainer.max_epochs=1", "data.decoding.image_size=16", "data.decode_workers=1"]
    run_ok(folder_job(tree, *model, *tiny, "callbacks.robustness=null"), workdir)
    (run_dir,) = (workdir / "outputs" / "train" / "runs").iterdir()
    (best,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    expected = pd.read_csv(run_dir / "test_predictions.csv")
    return {
        "workdir": workdir,
        "tree": tree,
        "run_dir": run_dir,
        "best": best,
        "expected": expected,
    }


def probs_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[["prob_Healthy", "prob_covid"]].to_numpy()


@pytest.mark.slow
def test_cli_prints_the_probabilities_training_computed(trained, capsys):
    row = trained["expected"].iloc[0]
    main([str(trained["best"]), *(f"--{m}={row[f'file_{m}']}" for m in ("ct", "cxr", "cough"))])
    out = json.loads(capsys.readouterr().out)
    assert out["missing"] == [] and out["modalities"] == ["ct", "cxr", "cough"]
    got = [out["probabilities"]["Healthy"], out["probabilities"]["covid"]]
    assert np.allclose(got, [row["prob_Healthy"], row["prob_covid"]], atol=1e-5)
    assert out["prediction"] == row["pred_name"]


@pytest.mark.slow
def test_a_file_of_the_wrong_modality_is_refused_naming_what_it_is(trained, capsys, tmp_path):
    mp3 = Path(__file__).parent / "fixtures" / "cough_48k_mono.mp3"
    with pytest.raises(SystemExit) as refused:
        main([str(trained["best"]), "--ct", str(mp3)])
    # by its type, as the model page says it (what the modality takes is listed)
    assert str(refused.value.code).startswith(
        f"mmfusion.predict: error: ct: {mp3.name} is not an image (a CT slice: bmp, dcm, "
    )
    png = Path(trained["expected"].iloc[0]["file_ct"])
    misnamed = tmp_path / "cough.wav"
    misnamed.write_bytes(png.read_bytes())
    with pytest.raises(SystemExit) as refused:
        main([str(trained["best"]), "--cough", str(misnamed)])
    # by its content, when the name lies
    assert f"{misnamed} is a PNG image, but cough files must be audio" in str(refused.value.code)
    assert capsys.readouterr().out == ""


@pytest.mark.slow
def test_any_subset_of_modalities_can_be_given(trained, capsys):
    row = trained["expected"].iloc[0]
    main([str(trained["best"]), "--cough", row["file_cough"]])
    out = json.loads(capsys.readouterr().out)
    assert out["missing"] == ["ct", "cxr"]
    assert sum(out["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    # the same as telling the model the two modalities are absent
    predictor = Predictor(trained["best"])
    expected = predictor.predict([{"ct": None, "cxr": None, "cough": row["file_cough"]}])[0]
    assert np.allclose([out["probabilities"]["Healthy"], out["probabilities"]["covid"]], expected)


@pytest.mark.slow
def test_folder_and_manifest_modes_write_one_row_per_patient(trained, tmp_path):
    expected = trained["expected"].set_index("file_ct")
    out = tmp_path / "folder.csv"
    main([str(trained["best"]), "--input", str(trained["tree"] / "test"), "--output", str(out)])
    frame = pd.read_csv(out).set_index("file_ct").loc[expected.index]
    assert np.allclose(probs_of(frame), probs_of(expected), atol=1e-5)

    manifest = tmp_path / "manifest.csv"
    rows = trained["expected"][["sample_id", "file_ct", "file_cough"]]
    rows.rename(columns={"file_ct": "ct", "file_cough": "cough"}).assign(cxr="").to_csv(
        manifest, index=False
    )
    main([str(trained["best"]), "--input", str(manifest), "--output", str(tmp_path / "m.csv")])
    result = pd.read_csv(tmp_path / "m.csv", keep_default_na=False)
    assert list(result["sample_id"]) == list(rows["sample_id"])
    assert set(result["missing"]) == {"cxr"}


def test_a_missing_checkpoint_is_an_error_naming_it():
    with pytest.raises(SystemExit, match="^mmfusion.predict: error: ") as caught:
        main(["/nonexistent/x.ckpt", "--ct", "a.png"])
    assert "checkpoint /nonexistent/x.ckpt does not exist" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_arguments_are_argparse_usage_errors(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--ct", "a.png"])  # no checkpoint
    assert caught.value.code == 2
    assert "the following arguments are required: MODEL" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_error_is_one_line_without_traceback(tmp_path):
    result = run_cli(["mmfusion.predict", f"{tmp_path}/x.ckpt", "--ct", "a.png"], cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"mmfusion.predict: error: checkpoint {tmp_path}/x.ckpt does not exist"
    )


@pytest.mark.slow
def test_a_modality_the_model_lacks_names_the_model_modalities(trained, tmp_path):
    cxr_only = Predictor(trained["best"])
    cxr_only.modalities = ["cxr"]  # as a CXR-only model would have
    with pytest.raises(ConfigError, match="ct: this model uses cxr only"):
        cxr_only.predict([{"ct": "a.png"}])


@pytest.mark.slow
def test_logged_mlflow_model_predicts_through_the_mlflow_cli(trained, tmp_path):
    workdir = trained["workdir"]
    tracking = f"sqlite:///{workdir}/mlflow.db"
    client = MlflowClient(tracking)
    (run,) = client.search_runs([client.get_experiment_by_name("mmfusion").experiment_id])
    expected = trained["expected"]
    records = [
        {"ct": r.file_ct, "cxr": r.file_cxr if i == 0 else None, "cough": r.file_cough}
        for i, r in enumerate(expected.itertuples())
    ]
    (tmp_path / "in.json").write_text(json.dumps({"dataframe_records": records}))
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    result = subprocess.run(
        [sys.executable, "-m", "mlflow", "models", "predict",
         "-m", f"runs:/{run.info.run_id}/model", "-i", str(tmp_path / "in.json"), "-t", "json",
         "--env-manager", "local", "-o", str(tmp_path / "out.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    got = pd.DataFrame(json.loads((tmp_path / "out.json").read_text())["predictions"])
    # row 0 had every modality: exactly what training computed; the rest lack the CXR
    assert np.allclose(probs_of(got)[0], probs_of(expected)[0], atol=1e-5)
    predictor = Predictor(trained["best"])
    assert np.allclose(probs_of(got), predictor.predict(records), atol=1e-5)
    assert got["prediction"].iloc[0] == expected["pred_name"].iloc[0]
    # the served model carries the weights only, not the optimizer state of the full checkpoint
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking)
    try:
        model_uri = mlflow.models.get_model_info(f"runs:/{run.info.run_id}/model").model_uri
        model_dir = mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path / "m"))
    finally:
        mlflow.set_tracking_uri(previous)
    (served,) = Path(model_dir).rglob("*.ckpt")
    assert set(torch.load(served, weights_only=True)) == {
        "state_dict",
        "hyper_parameters",
        "mmfusion_version",
    }
    assert served.stat().st_size < trained["best"].stat().st_size
