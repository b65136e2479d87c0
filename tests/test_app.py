"""The model page: what it answers for good and bad uploads, and the same in a real browser
(headless Chromium) against `python -m mmfusion.app` serving a trained model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from browser import chromium, port_for_a_browser, screenshot, server, wait_for

from mmfusion.serving.predictor import Predictor


def example_files(workdir: Path, label: str = "covid") -> dict[str, Path]:
    """One synthetic test patient's files (the run's own generated benchmark)."""
    (root,) = (workdir / "data").glob("synthetic-*/test")
    return {
        m: next((root / folder / label).iterdir())
        for m, folder in (("ct", "CT"), ("cxr", "CXR"), ("cough", "Cough sound"))
    }


@pytest.fixture(scope="module")
def predictor(quick_run) -> Predictor:
    return Predictor(quick_run["checkpoint"])


def test_the_page_sends_no_usage_statistics():
    from mmfusion.serving import app  # noqa: F401  (importing it switches analytics off)

    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_the_command_line_binds_to_this_machine_only_by_default():
    from mmfusion.cli.app import arguments

    args = arguments().parse_args(["run_dir"])
    assert (args.host, args.share) == ("127.0.0.1", False)


@pytest.mark.slow
def test_the_page_answers_what_predict_answers(quick_run, predictor):
    from mmfusion.serving.app import respond

    files = example_files(quick_run["workdir"])
    text, label, table, overlays, contributions = respond(
        predictor, 2**20, [str(files[m]) for m in predictor.modalities]
    )
    expected = predictor.predict([files])[0]
    assert text.startswith("Predicted **")
    assert np.allclose(table["probability"], expected, atol=1e-4)
    assert label == pytest.approx(dict(zip(predictor.class_names, expected, strict=True)))
    assert [caption.split(":")[0] for _, caption in overlays] == ["CT", "CXR", "cough spectrogram"]
    assert all(image.shape == (256, 256, 3) for image, _ in overlays)
    assert list(contributions["modality"]) == predictor.modalities


@pytest.mark.slow
def test_missing_modalities_are_absent_not_errors(quick_run, predictor):
    from mmfusion.serving.app import respond

    cough = str(example_files(quick_run["workdir"])["cough"])
    text, _, table, overlays, contributions = respond(predictor, 2**20, [None, None, cough])
    assert "absent: ct, cxr" in text
    assert np.allclose(table["probability"], predictor.predict([{"cough": cough}])[0], atol=1e-4)
    assert [caption.split(":")[0] for _, caption in overlays] == ["cough spectrogram"]
    assert list(contributions["given"]) == [False, False, True]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("upload", "message"),
    [
        ("wrong", "⚠️ ct: covid"),
        ("unreadable", "⚠️ cannot read image"),
        ("large", "more than the 1 MB this page accepts"),
        ("none", "⚠️ no input file: give at least one of ct, cxr, cough"),
    ],
)
def test_a_bad_upload_is_one_message_and_no_result(quick_run, predictor, tmp_path, upload, message):
    from mmfusion.serving.app import respond

    files = example_files(quick_run["workdir"])
    paths = {
        "wrong": [str(files["cough"]), None, None],
        "unreadable": [str(tmp_path / "scan.png"), None, None],
        "large": [str(tmp_path / "huge.png"), None, None],
        "none": [None, None, None],
    }[upload]
    (tmp_path / "scan.png").write_bytes(b"not a png at all")
    (tmp_path / "huge.png").write_bytes(bytes(2**20 + 1))
    text, label, table, overlays, contributions = respond(predictor, 2**20, paths)
    assert message in text and "\n" not in text
    assert (label, overlays) == ({}, []) and table.empty and contributions.empty


def page_probabilities(session) -> dict[str, float]:
    cells = session.find_elements("css selector", "#probabilities [role=gridcell]")
    texts = [c.get_attribute("textContent").strip() for c in cells]
    return {texts[i]: float(texts[i + 1]) for i in range(0, len(texts), 2)}


def page_message(session) -> str:
    return session.find_element("id", "message").get_attribute("textContent").strip()


def upload(session, files: dict[str, Path]) -> None:
    for modality, path in files.items():
        field = session.find_element("css selector", f"#upload-{modality} input[type=file]")
        field.send_keys(str(path))
    for path in files.values():  # each upload shows its file name once the server has it
        wait_for(lambda p=path: p.name in session.page_source, 30, f"upload of {path.name}")


def predict(session) -> str:
    before = page_message(session)
    session.find_element("id", "predict").click()
    done = ("Predicted", "⚠️")
    return wait_for(
        lambda: (m := page_message(session)) != before and m.startswith(done) and m, 120, "answer"
    )


@pytest.fixture(scope="module")
def page(quick_run):
    port = port_for_a_browser()
    examples = quick_run["workdir"] / "examples"
    source = str(quick_run["run_dir"].relative_to(quick_run["workdir"]))  # as a user types it
    args = ["mmfusion.app", source, "--port", str(port)]
    args += ["--examples-dir", str(examples)]
    with server(args, f"http://127.0.0.1:{port}/", quick_run["workdir"]) as url:
        yield url


@pytest.mark.slow
def test_in_chromium_the_page_shows_the_probabilities_predict_computes(page, quick_run, predictor):
    files = example_files(quick_run["workdir"])
    with chromium(height=1900) as session:
        session.get(page)
        wait_for(lambda: session.find_elements("id", "predict"), 60, "the page")
        assert "Research use only: not a diagnostic device" in session.page_source
        assert quick_run["run_id"] in session.page_source  # the model's identity
        upload(session, files)
        assert predict(session).startswith("Predicted")
        shown = page_probabilities(session)
        wait_for(lambda: session.find_elements("css selector", "#gradcam img"), 30, "Grad-CAM")
        screenshot(session, "app.png")
    expected = predictor.predict([files])[0]
    assert list(shown) == predictor.class_names
    assert sum(shown.values()) == pytest.approx(1.0, abs=5e-4)  # shown with 4 decimals
    assert np.allclose(list(shown.values()), expected, atol=5e-5 + 1e-6)


@pytest.mark.slow
def test_in_chromium_a_wrong_modality_upload_is_one_clear_message(page, quick_run):
    cough = example_files(quick_run["workdir"])["cough"]
    with chromium() as session:
        session.get(page)
        wait_for(lambda: session.find_elements("id", "predict"), 60, "the page")
        upload(session, {"ct": cough})
        message = predict(session)
        assert message == f"⚠️ ct: {cough.name} is not an image (a CT slice: " + (
            "bmp, dcm, jpeg, jpg, png, tif, tiff)"
        )
        assert not page_probabilities(session)
        # the server is still up and answers the next patient
        session.refresh()
        wait_for(lambda: session.find_elements("id", "predict"), 60, "the page again")
        upload(session, {"cough": cough})
        assert predict(session).startswith("Predicted")
