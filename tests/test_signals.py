"""SIGTERM / SIGINT stop a job at once, but never in the middle of a write that must be whole."""

from __future__ import annotations

import os
import signal

import pytest
from mlflow import MlflowClient

from mmfusion.runtime.signals import Interrupted, deferred, stop_on_signals
from mmfusion.tracking.loggers import NestedMLFlowLogger, final_status


def test_a_signal_inside_a_deferred_section_is_raised_when_the_section_ends():
    done = []
    with pytest.raises(Interrupted) as stopped, stop_on_signals():
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("rest of the section")
        done.append("after the section")
    assert done == ["rest of the section"]
    assert stopped.value.code == 128 + signal.SIGTERM


def test_a_signal_outside_a_deferred_section_stops_at_once():
    done = []
    with pytest.raises(Interrupted) as stopped, stop_on_signals():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("after the signal")
    assert done == [] and stopped.value.code == 128 + signal.SIGINT


class SignalledMidWrite(MlflowClient):
    """A real MLflow client that receives SIGTERM just as a metric write starts (an interrupted
    SQLite write used to leave the database locked and the run RUNNING)."""

    def log_batch(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return super().log_batch(*args, **kwargs)


def test_a_signal_during_a_tracking_write_waits_for_it_and_the_run_ends_killed(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    logger = NestedMLFlowLogger(experiment_name="signals", tracking_uri=uri)
    run_id = logger.run_id
    logger._mlflow_client = SignalledMidWrite(uri)  # Lightning keeps its client there
    with pytest.raises(Interrupted), stop_on_signals(), final_status([logger]):
        logger.log_metrics({"val/loss": 0.5}, step=3)
        raise AssertionError("the job should stop when the write ends")
    run = MlflowClient(uri).get_run(run_id)
    assert run.data.metrics == {"val/loss": 0.5}
    assert run.info.status == "KILLED"
