"""One decoding spec from training to serving: built once, saved in the checkpoint, and read back
by every entry point, so a file is decoded the same way wherever it is used."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from test_dicom import phantom, write_dicom

from conftest import decoding, make_tree, run_cli
from mmfusion.data.decoding.spec import DecodingSpec, ImageDecoding, Normalisation
from mmfusion.errors import ConfigError


def test_the_spec_round_trips_through_plain_data():
    spec = decoding(24, ct={"crop": 0.8, "window": {"center": 40, "width": 400}})
    spec = spec.fitted({"ct": (0.2, 0.1), "cxr": (0.5, 0.25), "cough": (0.4, 0.3)})
    data = spec.to_dict()
    json.dumps(data)  # JSON-able: MLflow models and weights-only checkpoints hold it
    assert DecodingSpec.from_dict(data) == spec
    assert data["ct"]["window"] == {"center": 40, "width": 400, "png_hu_offset": None}
    assert data["cough"]["features"]["kind"] == "LogMel"
    assert spec.normalisation("cxr") == Normalisation(0.5, 0.25)


def test_the_cache_key_ignores_the_statistics_fitted_from_the_arrays():
    spec = decoding(16)
    assert spec.cache_params("ct") == spec.fitted(dict.fromkeys(spec, (0.3, 0.2))).cache_params(
        "ct"
    )
    assert spec.cache_params("ct") != decoding(16, ct={"crop": 0.5}).cache_params("ct")


def test_a_run_decodes_only_its_modalities_and_names_an_unknown_one():
    spec = decoding(16).only(["cxr"])
    assert list(spec) == ["cxr"]
    with pytest.raises(ConfigError, match="no decoding for modality 'ct' \\(known: cxr\\)"):
        spec["ct"]


def test_centre_crop_keeps_the_middle_of_the_image(tmp_path):
    image = np.zeros((40, 40), np.uint8)
    image[10:30, 10:30] = 255  # a bright centre, a dark border a quarter wide
    Image.fromarray(image).save(tmp_path / "x.png")
    whole = decoding(8).decode("cxr", tmp_path / "x.png")
    centre = decoding(8, cxr={"crop": 0.5}).decode("cxr", tmp_path / "x.png")
    assert whole[0, 0] == 0 and whole[4, 4] == 255
    assert (centre == 255).all()
    with pytest.raises(ConfigError, match=r"crop=0.0: use a fraction in \(0, 1\]"):
        ImageDecoding(crop=0.0)


@pytest.mark.slow
def test_dicom_ct_is_decoded_as_in_training_by_every_entry_point(tmp_path):
    """Trained with a mediastinal window on DICOM CT; predict, the MLflow model and evaluate must
    all decode the same files through the checkpoint's spec: same inputs, same outputs."""
    root = make_tree(tmp_path / "tree", {"train": 4, "valid": 2, "test": 2})
    for png in sorted(root.glob("*/CT/*/*.png")):
        hu = phantom() + 4 * (np.asarray(Image.open(png), np.float32)[:32, :24].mean() - 128)
        write_dicom(png.with_suffix(".dcm"), hu)
        png.unlink()
    window = ["data.decoding.ct.window.center=40", "data.decoding.ct.window.width=400"]
    common = ["data=folder", f"data.root={root}", "modality=ct", "backbone=simple_cnn"]
    common += ["data.decoding.image_size=16", "data.decode_workers=1", "seed=3"]
    train = ["mmfusion", *common, *window, "fusion=intermediate", "trainer.max_epochs=1"]
    train += ["callbacks.explain=null", "callbacks.robustness=null"]
    trained = run_cli(train, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    (best,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    at_training = pd.read_csv(run_dir / "test_predictions.csv")

    from mmfusion.serving.predictor import Predictor

    predictor = Predictor(best)
    run_config = OmegaConf.create(predictor.model.hparams.run_config)
    datamodule = instantiate(run_config.data)  # the training run's own data module
    datamodule.setup("test")
    dataset = datamodule.datasets["test"]
    files = [s.files["ct"] for s in dataset.samples]
    served = np.stack([predictor.decoding.decode("ct", f) for f in files])
    assert np.array_equal(served, np.asarray(dataset.arrays["ct"]))  # identical inputs
    lung = decoding(16).decode("ct", files[0])
    assert not np.array_equal(served[0], lung)  # the window travelled: not the default one

    inputs, _ = dataset.__getitems__(list(range(len(dataset))))
    with torch.no_grad():
        logits = predictor.model(inputs)
    probs = predictor.predict([{"ct": f} for f in files])
    assert np.allclose(probs, logits.softmax(1).numpy(), atol=1e-6)
    expected = at_training.set_index("file_ct").loc[[str(f) for f in files]]
    assert np.allclose(probs, expected[["prob_Healthy", "prob_covid"]].to_numpy(), atol=1e-5)

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    (run_id,) = [json.loads((run_dir / "mlflow_run.json").read_text()).values()][0]
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    out = model.predict(pd.DataFrame({"ct": [str(f) for f in files]}))
    assert np.allclose(out[["prob_Healthy", "prob_covid"]].to_numpy(), probs, atol=1e-5)

    evaluated = run_cli(["mmfusion.evaluate", f"ckpt_path={best}", "logger=csv"], cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    (eval_dir,) = (tmp_path / "outputs" / "evaluate" / "runs").iterdir()
    again = pd.read_csv(eval_dir / "test_predictions.csv").set_index("file_ct")
    again = again.loc[[str(f) for f in files]]
    assert np.allclose(again[["prob_Healthy", "prob_covid"]].to_numpy(), probs, atol=1e-5)
