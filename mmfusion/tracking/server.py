"""Whether an MLflow tracking server answers: checked before a job starts (a dead server is one
line within seconds instead of minutes of retries) and after a failed call mid-run (to tell a
lost server from a refused request).

Only the standard library is imported: the check runs before torch, Lightning or MLflow load.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from urllib.parse import urlparse

from mmfusion.errors import ConfigError

#: seconds to wait for a server's /health answer (logger.mlflow.server_timeout)
DEFAULT_TIMEOUT = 5.0
#: MLflow's own HTTP retries (7, exponential back-off: minutes against a dead server), lowered
#: for mmfusion's processes unless the user set them: a lost server is noticed in seconds
CLIENT_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def is_server(uri: str) -> bool:
    return urlparse(str(uri)).scheme in ("http", "https")


def unreachable(uri: str, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """Why the server at `uri` does not answer its health check, or None when it does."""
    url = f"{str(uri).rstrip('/')}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (OSError, ValueError) as err:  # refused, unknown host, timeout, bad URL
        reason = getattr(err, "reason", None) or err
        return str(reason) or type(err).__name__
    return None if status == 200 else f"/health answered HTTP {status}"


def check_reachable(
    uri: str, timeout: float = DEFAULT_TIMEOUT, option: str = "logger.mlflow.tracking_uri"
) -> None:
    """Raise a one-line ConfigError naming the URI and the fix when a server does not answer."""
    if not is_server(uri):
        return
    reason = unreachable(uri, timeout)
    if reason:
        parsed = urlparse(str(uri))
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        raise ConfigError(
            f"{option}={uri}: no MLflow server answers there ({reason}; waited at most "
            f"{timeout:g} s): start it (mlflow server --host {parsed.hostname} --port {port}) "
            f"or drop the option to log to the default SQLite store (./mlflow.db)"
        )


def quick_client_retries() -> None:
    """Lower MLflow's HTTP retries for this process (and its children) unless already set."""
    for name, value in CLIENT_RETRIES.items():
        os.environ.setdefault(name, value)
