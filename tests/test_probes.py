"""The probe table: bad inputs and faults as a new user meets them. Each is answered with a
non-zero exit (or the documented skip), no traceback, one line naming the culprit, and nothing
written before lost. docs/probes.md lists every row with its answer.

Cheap probes run in-process through the same code as the entry points: options through the
`Preflight` Hydra callback (the first thing every configured job runs), files and checkpoints
through the CLI's error handler. Probes that need a real process (signals in each phase, a
tracking server dead or killed mid-run, a full disk) are marked slow and share few runs.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, open_dict
from PIL import Image
from test_bad_files import CASES as BAD_FILES
from test_bad_files import datamodule

from conftest import CONF, REPO, MlflowServer, free_port, make_tree, run_cli
from mmfusion.cli.preflight import Preflight
from mmfusion.cli.tool import one_line_errors
from mmfusion.data.layouts.manifest import ManifestLayout

# --------------------------------------------------------------------------------------------
# what every probe asserts


def error_lines(text: str, prog: str = "mmfusion") -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"{prog}: error: ")]


#: the probe being run (so that its answer is recorded for docs/probes.md)
_probe: list[pytest.Item] = []


@pytest.fixture(autouse=True)
def _record_answers(request: pytest.FixtureRequest):
    _probe[:] = [request.node]
    yield
    _probe.clear()


def assert_one_line(text: str, culprit: str, prog: str = "mmfusion") -> str:
    """Exactly one error line, naming the culprit, and no traceback; returns the line (also
    recorded as the probe's `answer`: benchmarks/probe_table.py writes them to docs)."""
    assert "Traceback" not in text, text[-3000:]
    lines = error_lines(text, prog)
    assert len(lines) == 1, text[-3000:]
    assert culprit in lines[0], lines[0]
    for item in _probe:
        item.user_properties.append(("answer", lines[0]))
    return lines[0]


def cli_exit(action: Callable[[], object], prog: str = "mmfusion") -> SystemExit:
    """How an entry point ends when `action` fails: the SystemExit its error handler raises
    (a message: exit status 1). A bug would escape with its traceback and fail the probe."""
    with pytest.raises(SystemExit) as raised:
        one_line_errors(prog)(action)()
    assert isinstance(raised.value.code, str), "a user error exits with a message (status 1)"
    return raised.value


# --------------------------------------------------------------------------------------------
# options: every app's config through the Preflight callback, in-process


@pytest.fixture
def compose_app(tmp_path: Path) -> Callable[..., DictConfig]:
    """compose(app, overrides) as Hydra builds the app's config, with runtime dirs in tmp_path."""

    def _compose(app: str, *overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(app, overrides=list(overrides), return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
            cfg.hydra.runtime.cwd = str(tmp_path)
            cfg.hydra.job.num = 0
            cfg.hydra.run.dir = str(tmp_path / "run")
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


#: (app, overrides, the option the one error line must name)
OPTION_PROBES = [
    ("train", ["trainer.max_epochs=-1"], "trainer.max_epochs=-1: must be an integer >= 1"),
    ("train", ["trainer.max_epochs=0"], "trainer.max_epochs=0"),
    ("train", ["trainer.max_epochs=ten"], "trainer.max_epochs=ten"),
    ("train", ["data.batch_size=0"], "data.batch_size=0: must be an integer >= 1"),
    ("train", ["data.batch_size=2.5"], "data.batch_size=2.5"),
    ("train", ["data.decoding.image_size=0"], "data.decoding.image_size=0: must be an integer >="),
    ("train", ["data.decoding.image_size=16"], "image_size=16: must be an integer >= backbone"),
    ("train", ["backbone=simple_cnn", "data.decoding.image_size=8"], "min_image_size (16)"),
    ("train", ["data.decoding.cxr.size=8"], "data.decoding.cxr.size=8"),
    ("train", ["data.decoding.ct.crop=0"], "data.decoding.ct.crop=0"),
    ("train", ["data.decoding.ct.window.width=0"], "data.decoding.ct.window.width=0"),
    ("train", ["data.decoding.cough.features.sample_rate=0"], "features.sample_rate=0"),
    ("train", ["model.optimizer.lr=abc"], "model.optimizer.lr=abc: must be a number > 0"),
    ("train", ["model.optimizer.lr=0"], "model.optimizer.lr=0"),
    ("train", ["model.optimizer.lr=-0.001"], "model.optimizer.lr=-0.001"),
    ("train", ["model.optimizer.weight_decay=-1"], "model.optimizer.weight_decay=-1"),
    ("train", ["model.modality_dropout=1.0"], "model.modality_dropout=1.0"),
    ("train", ["model.augment.spec_mask=2"], "model.augment.spec_mask=2"),
    ("train", ["data.on_bad_file=ignore"], "data.on_bad_file=ignore: must be one of raise, skip"),
    ("train", ["data.num_workers=-1"], "data.num_workers=-1"),
    ("train", ["data.decode_workers=0"], "data.decode_workers=0"),
    ("train", ["modality.names=[ct,xray]"], "modality.names=[ct, xray]"),
    ("train", ["modality.names=[]"], "modality.names=[]"),
    ("train", ["modality.names=[ct,ct]"], "modality.names=[ct, ct]"),
    ("train", ["data.folds=1"], "data.folds=1"),
    ("train", ["data.folds=5", "data.fold=5"], "data.fold=5: must be an integer >= 0 and <"),
    ("train", ["data.layout.finding_prob.ct=1.5"], "data.layout.finding_prob.ct=1.5"),
    ("train", ["data.layout.per_class.train=-1"], "data.layout.per_class.train=-1"),
    ("train", ["data.min_per_class.val=0"], "data.min_per_class.val=0"),
    ("train", ["data.near_duplicates=delete"], "data.near_duplicates=delete"),
    ("train", ["trainer.precision=17"], "trainer.precision=17"),
    ("train", ["trainer.accelerator=quantum"], "trainer.accelerator=quantum"),
    ("train", ["trainer.devices=0"], "trainer.devices=0"),
    ("train", ["monitor=val/accuracy"], "monitor=val/accuracy"),
    ("train", ["monitor_mode=maximise"], "monitor_mode=maximise"),
    ("train", ["test=maybe"], "test=maybe: must be true or false"),
    ("train", ["seed=-1"], "seed=-1"),
    ("train", ["callbacks.robustness.noise_levels=[0.1,-1]"], "noise_levels=[0.1, -1]"),
    ("train", ["callbacks.explain.max_samples=0"], "callbacks.explain.max_samples=0"),
    ("train", ["fusion=attention", "fusion.fusion.heads=0"], "fusion.fusion.heads=0"),
    ("train", ["fusion=late", "fusion.head.dropout=1.5"], "fusion.head.dropout=1.5"),
    ("train", ["logger.mlflow.server_timeout=0"], "logger.mlflow.server_timeout=0"),
    (
        "train",
        ["experiment=quick", "data=folder", "data.root=/data"],
        "experiment=quick is written for data=synthetic, not data=folder",
    ),
    ("evaluate", ["ckpt_path=x.ckpt", "split=validation"], "split=validation"),
    ("evaluate", ["ckpt_path=x.ckpt", "trainer.precision=half"], "trainer.precision=half"),
    ("check", ["check.phash_distance=300"], "check.phash_distance=300"),
    ("check", ["check.confound_alpha=2"], "check.confound_alpha=2"),
    ("compare", ["n_resamples=10"], "n_resamples=10: must be an integer >= 100"),
]

PROGS = {"train": "mmfusion", "evaluate": "mmfusion.evaluate"}


@pytest.mark.parametrize(
    ("app", "overrides", "culprit"),
    OPTION_PROBES,
    ids=[f"{app}:{' '.join(o)}" for app, o, _ in OPTION_PROBES],
)
def test_a_nonsense_option_is_one_line_before_anything_runs(
    compose_app, tmp_path, app, overrides, culprit
):
    cfg = compose_app(app, *overrides)
    with pytest.raises(SystemExit) as raised:
        Preflight().on_run_start(cfg)
    prog = PROGS.get(app, f"mmfusion.{app}")
    assert_one_line(str(raised.value.code), culprit, prog)
    assert list(tmp_path.iterdir()) == []  # no run dir, cache or store created


def test_every_violation_is_its_own_line(compose_app):
    cfg = compose_app(
        "train", "trainer.max_epochs=-1", "data.batch_size=0", "data.decoding.image_size=0"
    )
    with pytest.raises(SystemExit) as raised:
        Preflight().on_run_start(cfg)
    lines = error_lines(str(raised.value.code))
    assert [line.split(":")[2].split("=")[0].strip() for line in lines] == [
        "data.decoding.image_size",
        "data.batch_size",
        "trainer.max_epochs",
    ]


@pytest.mark.parametrize("app", ["train", "evaluate", "check", "compare"])
def test_the_shipped_configs_pass_the_rules(compose_app, app):
    cfg = compose_app(app, *(["ckpt_path=x.ckpt"] if app == "evaluate" else []))
    Preflight(check_store=False).on_run_start(cfg)


def test_an_option_its_target_does_not_take_is_one_line_naming_the_node(compose_app):
    from hydra.utils import instantiate

    cfg = compose_app("train", "data=folder", "data.root=/d", "+data.layout.colour=1")
    stopped = cli_exit(lambda: instantiate(cfg.data))
    assert_one_line(str(stopped.code), "data.layout: ")
    assert "unexpected keyword argument 'colour'" in str(stopped.code)


def test_the_precision_names_are_lightnings():
    from typing import get_args

    from lightning.fabric.plugins.precision.precision import (
        _PRECISION_INPUT_INT,
        _PRECISION_INPUT_STR,
        _PRECISION_INPUT_STR_ALIAS,
    )

    from mmfusion.cli.options import PRECISIONS

    lightning = {*get_args(_PRECISION_INPUT_INT), *get_args(_PRECISION_INPUT_STR)}
    lightning |= set(get_args(_PRECISION_INPUT_STR_ALIAS))
    assert set(PRECISIONS) == lightning


# --------------------------------------------------------------------------------------------
# data: files, folders and manifests behind the CLI's error handler, in-process


def _empty_a_class_by_skipping(root: Path) -> Path:
    """Every covid test patient's CT unreadable: skipping drops the class from the test split."""
    for png in (root / "test" / "CT" / "covid").glob("*.png"):
        png.write_bytes(b"not an image")
    return root / "test" / "CT" / "covid"


def _unreadable_split(root: Path) -> Path:
    for png in (root / "valid" / "CT").rglob("*.png"):
        png.write_bytes(b"not an image")
    return root / "valid" / "CT"


def _missing_root(root: Path) -> Path:
    shutil.rmtree(root)
    return root


def _missing_modality_folder(root: Path) -> Path:
    shutil.rmtree(root / "train" / "CXR")
    return root / "train" / "CXR"


def _empty_class_folder(root: Path) -> Path:
    folder = root / "train" / "CT" / "covid"
    shutil.rmtree(folder)
    folder.mkdir()
    return folder


def _two_files_one_stem(root: Path) -> Path:
    png = root / "train" / "CT" / "covid" / "covidtrain0.png"
    shutil.copy(png, png.with_suffix(".jpg"))
    return png.parent


def _same_file_in_two_splits(root: Path) -> Path:
    shutil.copy(root / "train" / "CXR" / "covid" / "covidtrain0.png",
                root / "test" / "CXR" / "covid" / "covidtest0.png")  # fmt: skip
    return root / "test" / "CXR" / "covid" / "covidtest0.png"


def _class_only_in_train(root: Path) -> Path:
    for modality in ("CT", "CXR", "Cough sound"):
        shutil.copytree(root / "train" / modality / "covid", root / "train" / modality / "flu")
    return root / "train" / "CT" / "flu"


#: name -> (break the tree, datamodule options, the text the one line must hold besides the path)
DATA_PROBES = {
    **{name: (make_bad, {}, reason) for name, (make_bad, reason) in BAD_FILES.items()},
    "class emptied by skipping": (
        _empty_a_class_by_skipping,
        {"on_bad_file": "skip"},
        "test has 0 'covid'",
    ),
    "whole split unreadable, skipped": (
        _unreadable_split,
        {"on_bad_file": "skip"},
        "no readable samples left in split 'val' (skipped",
    ),
    "data root missing": (_missing_root, {}, "data root does not exist"),
    "modality folder missing": (_missing_modality_folder, {}, "missing folder"),
    "empty class folder": (_empty_class_folder, {}, "empty class folder"),
    "two files share a stem": (_two_files_one_stem, {}, "ambiguous pairing"),
    "identical file in two splits": (_same_file_in_two_splits, {}, "identical"),
    "class in train only": (_class_only_in_train, {}, "flu"),
}


@pytest.mark.parametrize("probe", list(DATA_PROBES))
def test_bad_data_is_one_line_naming_the_file(tmp_path, probe):
    make_bad, options, reason = DATA_PROBES[probe]
    root = make_tree(tmp_path / "tree")
    culprit = make_bad(root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    stopped = cli_exit(lambda: datamodule(root, tmp_path, **options).setup())
    line = assert_one_line(str(stopped.code), reason)
    assert str(culprit) in line or probe.startswith("class"), line
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_skipping_without_emptying_a_class_is_the_documented_skip(tmp_path):
    root = make_tree(tmp_path / "tree")
    bad = root / "test" / "CT" / "covid" / "covidtest0.png"
    bad.write_bytes(b"not an image")
    dm = datamodule(root, tmp_path, on_bad_file="skip")
    dm.setup()
    assert list(dm.skipped) == [str(bad)]
    assert dm.class_counts()["test"] == {"Healthy": 2, "covid": 1}


def _manifest(folder: Path, rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / name)
    path = folder / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


MANIFEST_PROBES = {
    "manifest missing": ([], "manifest does not exist"),
    "manifest without label column": (["patient_id,ct", "p1,a.png"], "needs columns"),
    "patient on two rows": (
        ["patient_id,label,split,ct", "p1,x,train,a.png", "p1,x,test,b.png"],
        "patient_id appears on more than one row",
    ),
    "unknown split value": (
        ["patient_id,label,split,ct", "p1,x,training,a.png"],
        "unknown split value",
    ),
    "file outside the manifest's folder": (
        ["patient_id,label,split,ct", "p1,x,train,../../etc/passwd"],
        "passwd",
    ),
}


@pytest.mark.parametrize("probe", list(MANIFEST_PROBES))
def test_a_bad_manifest_is_one_line_naming_it(tmp_path, probe):
    rows, culprit = MANIFEST_PROBES[probe]
    path = _manifest(tmp_path / "data", rows) if rows else tmp_path / "data" / "manifest.csv"
    layout = ManifestLayout(path)
    stopped = cli_exit(lambda: [layout.prepare(), layout.samples("train", ["ct"])])
    assert_one_line(str(stopped.code), culprit)


# --------------------------------------------------------------------------------------------
# checkpoints given to predict / evaluate / resume


def _truncated_checkpoint(path: Path) -> Path:
    import torch

    torch.save({"state_dict": {"w": torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    return path


def _not_a_checkpoint(path: Path) -> Path:
    path.write_text("hello")
    return path


def _foreign_checkpoint(path: Path) -> Path:
    import torch

    torch.save({"state_dict": {}}, path)
    return path


CHECKPOINT_PROBES = {
    "checkpoint missing": (lambda p: p, "does not exist"),
    "checkpoint truncated": (_truncated_checkpoint, "cannot read checkpoint"),
    "text named .ckpt": (_not_a_checkpoint, "cannot read checkpoint"),
    "checkpoint of another program": (_foreign_checkpoint, "is not an mmfusion checkpoint"),
}


@pytest.mark.parametrize("probe", list(CHECKPOINT_PROBES))
def test_a_bad_checkpoint_is_one_line_naming_it(tmp_path, probe):
    from mmfusion.serving.predictor import Predictor

    make_bad, reason = CHECKPOINT_PROBES[probe]
    ckpt = make_bad(tmp_path / "last.ckpt")
    stopped = cli_exit(lambda: Predictor(ckpt), "mmfusion.predict")
    line = assert_one_line(str(stopped.code), reason, "mmfusion.predict")
    assert str(ckpt) in line


# --------------------------------------------------------------------------------------------
# real processes: the tracking server, signals in each phase, a full disk, a read-only folder

TINY = [
    "backbone=simple_cnn",
    "data.decoding.image_size=16",
    "data.batch_size=4",
    "data.decode_workers=1",
    "trainer.max_epochs=2",
    "callbacks.progress_bar=null",
    "callbacks.early_stopping=null",
    "callbacks.log_model=null",
]
BLOCK = str(Path(__file__).with_name("phase_block.py"))


def test_a_dead_tracking_server_is_one_line_within_seconds(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    result = run_cli(["mmfusion", f"logger.mlflow.tracking_uri={uri}"], cwd=tmp_path, timeout=60)
    took = time.monotonic() - start
    assert result.returncode == 1 and took < 15, (took, result.stderr[-2000:])
    line = assert_one_line(result.stderr, f"logger.mlflow.tracking_uri={uri}")
    assert "mlflow server --host 127.0.0.1" in line and "SQLite" in line
    assert list(tmp_path.iterdir()) == []  # no run dir, no store


def test_nonsense_options_end_to_end_are_one_line_each(tmp_path):
    result = run_cli(
        ["mmfusion", "trainer.max_epochs=-1", "data.batch_size=0",
         "data.decoding.image_size=0", "model.optimizer.lr=abc"],
        cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    named = [line.split(": ")[2].split("=")[0] for line in error_lines(result.stderr)]
    assert sorted(named) == sorted(
        ["trainer.max_epochs", "data.batch_size", "data.decoding.image_size", "model.optimizer.lr"]
    )
    quick = run_cli(["mmfusion", "experiment=quick", "data=folder", "data.root=/d"], tmp_path, 60)
    assert quick.returncode == 1
    assert_one_line(quick.stderr, "experiment=quick is written for data=synthetic")
    assert list(tmp_path.iterdir()) == []


def _unprivileged() -> list[str]:
    """A command prefix that drops the root capabilities which ignore file permissions."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_a_read_only_output_folder_is_one_line_and_keeps_its_files(tmp_path):
    outputs = tmp_path / "outputs"
    (outputs / "train" / "runs" / "earlier").mkdir(parents=True)
    earlier = outputs / "train" / "runs" / "earlier" / "metrics.json"
    earlier.write_text('{"test/acc": 0.9}')
    for folder in (outputs, outputs / "train", outputs / "train" / "runs"):
        folder.chmod(0o555)
    try:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
        result = subprocess.run(
            [*_unprivileged(), sys.executable, "-m", "mmfusion", "logger=csv"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        for folder in (outputs, outputs / "train", outputs / "train" / "runs"):
            folder.chmod(0o755)
    assert result.returncode == 1
    assert_one_line(result.stderr, "hydra.run.dir=")
    assert "outputs/train/runs" in error_lines(result.stderr)[0]
    assert earlier.read_text() == '{"test/acc": 0.9}'


class Job:
    """`python -m <module> ARGS` in a real process, one function of which waits for a signal
    (tests/phase_block.py), so that the signal lands in a known phase."""

    def __init__(self, cwd: Path, where: str, args: list[str], module: str = "mmfusion") -> None:
        self.cwd, self.marker = cwd, cwd / f"in-phase-{time.monotonic_ns()}"
        self.stderr = cwd / f"output-{self.marker.name}.txt"  # stdout and stderr
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, BLOCK, where, str(self.marker), "--", module, *args],
            cwd=cwd, env=env, stdout=self.stderr.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_for_phase(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            assert self.process.poll() is None, self.stderr.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{self.marker} never appeared"
            time.sleep(0.05)

    def signal(self, signum: int = signal.SIGTERM) -> int:
        self.wait_for_phase()
        self.process.send_signal(signum)
        return self.process.wait(timeout=300)

    def go_on(self) -> int:
        self.wait_for_phase()
        self.marker.unlink()
        return self.process.wait(timeout=600)

    @property
    def text(self) -> str:
        return self.stderr.read_text()


def runs_of(store: str, experiment: str = "mmfusion") -> list:
    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def history(store: str, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(store).get_metric_history(run_id, key)]


@pytest.mark.slow
def test_a_signal_in_any_phase_after_fit_is_killed_143_and_resume_completes_the_same_run(
    tmp_path,
):
    """One run dir, stopped in four phases in turn (the MLflow model upload at the end of fit,
    test, explanations, artifact upload), each resume taking it one phase further, then
    completed; then `mmfusion.evaluate` stopped while testing."""
    tree = make_tree(tmp_path / "tree", per_split={"train": 4, "valid": 2, "test": 2})
    args = ["data=folder", f"data.root={tree}", *TINY[:-1]]  # with the MLflow model
    store = f"sqlite:///{tmp_path}/mlflow.db"
    phases = [
        ("mmfusion.serving.mlflow_model:log_pyfunc_model", []),
        ("mmfusion.models.classifier:FusionClassifier.test_step", ["resume=true"]),
        ("mmfusion.explain.callback:Explanations.on_test_end", ["resume=true"]),
        ("mmfusion.cli.train:write_artifacts", ["resume=true"]),
    ]
    run_id, val_history = None, None
    for where, extra in phases:
        job = Job(tmp_path, where, [*args, *extra])
        assert job.signal(signal.SIGTERM) == 143, job.text[-3000:]
        assert "Traceback" not in job.text and not error_lines(job.text)
        (run,) = runs_of(store)
        assert run.info.status == "KILLED" and run.info.run_id == (run_id or run.info.run_id)
        run_id = run.info.run_id
        val_history = val_history or history(store, run_id, "val/acc")
        assert history(store, run_id, "val/acc") == val_history  # nothing lost, nothing twice
        assert [step for step, _ in val_history] == [1, 3]  # no epoch trained again
        (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    result = run_cli(["mmfusion", *args, "resume=true"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_of(store)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert history(store, run_id, "test/acc") == [(4, run.data.metrics["test/acc"])]  # once
    artifacts = {a.path for a in MlflowClient(store).list_artifacts(run_id)}
    assert {"metrics.json", "evaluation", "explain", "checkpoints"} <= artifacts
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val/acc"] == val_history[-1][1] and "test/acc" in metrics
    assert set(json.loads((run_dir / "progress.json").read_text())) == {
        "trained", "fit", "test", "artifacts"
    }  # fmt: skip

    evaluate = Job(
        tmp_path,
        "mmfusion.models.classifier:FusionClassifier.test_step",
        [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "callbacks.progress_bar=null"],
        module="mmfusion.evaluate",
    )
    assert evaluate.signal(signal.SIGTERM) == 143, evaluate.text[-3000:]
    assert "Traceback" not in evaluate.text
    statuses = {r.info.run_id: r.info.status for r in runs_of(store)}
    assert statuses.pop(run_id) == "FINISHED" and list(statuses.values()) == ["KILLED"]


@pytest.mark.slow
def test_ctrl_c_while_validating_is_killed_130_with_the_last_checkpoint_kept(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 4, "valid": 2, "test": 2})
    job = Job(
        tmp_path,
        "mmfusion.models.classifier:FusionClassifier.validation_step@2",  # epoch 1's
        ["data=folder", f"data.root={tree}", *TINY],
    )
    assert job.signal(signal.SIGINT) == 130, job.text[-3000:]
    assert "Traceback" not in job.text and not error_lines(job.text)
    (run,) = runs_of(f"sqlite:///{tmp_path}/mlflow.db")
    assert run.info.status == "KILLED" and "val/acc" in run.data.metrics
    (checkpoints,) = tmp_path.glob("outputs/train/runs/*/checkpoints")
    assert {"last.ckpt", "interrupted.ckpt"} <= {p.name for p in checkpoints.iterdir()}


@pytest.mark.slow
def test_sigterm_in_a_multiruns_comparison_keeps_the_jobs_and_kills_the_parent(tmp_path):
    from mmfusion.tracking.runs import SWEEP_TAG

    tree = make_tree(tmp_path / "tree", per_split={"train": 4, "valid": 2, "test": 2})
    job = Job(
        tmp_path,
        "mmfusion.evaluation.comparison:compare",
        ["-m", "data=folder", f"data.root={tree}", *TINY, "trainer.max_epochs=1",
         "callbacks.explain=null", "callbacks.robustness=null", "seed=1"],
    )  # fmt: skip
    assert job.signal(signal.SIGTERM) == 143, job.text[-3000:]
    assert "Traceback" not in job.text
    runs = runs_of(f"sqlite:///{tmp_path}/mlflow.db")
    parent = [r for r in runs if SWEEP_TAG in r.data.tags]
    jobs = [r for r in runs if SWEEP_TAG not in r.data.tags]
    assert [r.info.status for r in parent] == ["KILLED"]
    assert [r.info.status for r in jobs] == ["FINISHED"] and "test/acc" in jobs[0].data.metrics


@pytest.mark.slow
def test_a_tracking_server_killed_mid_run_loses_nothing(tmp_path):
    server = MlflowServer(tmp_path)
    tree = make_tree(tmp_path / "tree", per_split={"train": 4, "valid": 2, "test": 2})
    try:
        server.wait_until_up()
        job = Job(
            tmp_path,
            "mmfusion.models.classifier:FusionClassifier.training_step@3",  # epoch 1
            ["data=folder", f"data.root={tree}", *TINY, "trainer.max_epochs=3",
             f"logger.mlflow.tracking_uri={server.url}"],
        )  # fmt: skip
        job.wait_for_phase()
        server.kill()
        assert job.go_on() == 0, job.text[-3000:]
    finally:
        server.kill()
    (lost,) = runs_of(server.store)  # the server's own store, read directly
    assert lost.info.status == "RUNNING" and history(server.store, lost.info.run_id, "val/acc")
    (rest,) = runs_of(f"sqlite:///{tmp_path}/mlflow.db")  # the fallback store
    assert rest.data.tags["mmfusion.continues"] == f"{server.url} run {lost.info.run_id}"
    assert rest.info.status == "FINISHED" and "test/acc" in rest.data.metrics
    steps = [s for s, _ in history(server.store, lost.info.run_id, "val/acc")]
    steps += [s for s, _ in history(f"sqlite:///{tmp_path}/mlflow.db", rest.info.run_id,
                                    "val/acc")]  # fmt: skip
    assert sorted(steps) == [1, 3, 5]  # every epoch's validation, in one store or the other
    assert rest.data.params["trainer/max_epochs"] == "3"
    warning = next(line for line in job.text.splitlines() if "stopped answering" in line)
    assert server.url in warning and f"sqlite:///{tmp_path}/mlflow.db" in warning


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_partial_checkpoint(tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: writes past it fail with EFBIG (Python ignores
    SIGXFSZ), as they fail with ENOSPC on a full one."""
    tree = make_tree(tmp_path / "tree", per_split={"train": 4, "valid": 2, "test": 2})
    args = ["data=folder", f"data.root={tree}", *TINY, "logger=csv", "trainer.max_epochs=1"]
    assert run_cli(["mmfusion", *args], cwd=tmp_path).returncode == 0
    (earlier,) = tmp_path.glob("outputs/train/runs/*")
    before = {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()}
    size = (earlier / "checkpoints" / "last.ckpt").stat().st_size

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "mmfusion", *args, "seed=3"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        preexec_fn=small_disk,
    )  # fmt: skip
    assert result.returncode == 1
    line = assert_one_line(result.stderr, "File too large")
    (run,) = set(tmp_path.glob("outputs/train/runs/*")) - {earlier}
    assert f"{run / 'checkpoints'}/epoch00.ckpt: File too large" in line
    assert list((run / "checkpoints").iterdir()) == []  # no partial file left behind
    assert {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()} == before
