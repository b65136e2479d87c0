"""Pretrained weights from the Hugging Face Hub, the way timm and transformers fetch them (cached
under `HF_HOME`, `HF_HUB_OFFLINE=1` honoured), but never a hang.

Without network, huggingface_hub retries a file request five times with back-off (~50 s here)
before it gives up, even when the file is already cached. So: weights found in the cache are
loaded with the hub client switched offline for that call (no request at all); weights not in
the cache are fetched only when offline mode is off and the endpoint answers within seconds;
otherwise one ConfigError names the model and how to get its weights.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlparse

from mmfusion.errors import ConfigError

#: the files timm looks for in a model's hub repository (safetensors first)
HUB_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors")
#: seconds to wait for the weights' server before saying it cannot be reached
CONNECT_TIMEOUT = 5.0


def hub_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def cached_file(repo_id: str, filenames: Sequence[str], revision: str | None = None) -> str | None:
    """The first of `filenames` that the local hub cache holds for `repo_id`, or None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(found, str):
            return found
    return None


def offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """None if a TCP connection to `url`'s host opens within `timeout` s, else the reason."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as err:
        return str(err) or type(err).__name__


@contextmanager
def hub_client_offline() -> Iterator[None]:
    """huggingface_hub answers from its cache alone inside (it reads the switch per request)."""
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


@contextmanager
def hub_weights(
    repo_id: str, filenames: Sequence[str], what: str, local_option: str
) -> Iterator[None]:
    """Around the library call that loads `repo_id`'s weights: from the cache without a
    request, else downloaded if the hub answers, else one ConfigError within seconds.

    `what` names the model in the error, `local_option` the option that takes a local file."""
    if cached_file(repo_id, filenames) is not None:
        with hub_client_offline():
            yield
        return
    get = (
        f"run once with network access to cache them under {hub_cache()} (HF_HOME), "
        f"or set {local_option}"
    )
    if offline_mode():
        raise ConfigError(
            f"{what}: pretrained weights {repo_id} are not in the Hugging Face cache and "
            f"HF_HUB_OFFLINE=1: {get}"
        )
    from huggingface_hub import constants

    reason = reachable(constants.ENDPOINT)
    if reason is not None:
        raise ConfigError(
            f"{what}: pretrained weights {repo_id} are not in the Hugging Face cache and "
            f"{constants.ENDPOINT} cannot be reached ({reason}): {get}"
        )
    yield


def file_weights(path: str, url: str, what: str, how: str) -> None:
    """A library that keeps its own weights file (torchxrayvision): present, or fetchable now
    (offline mode off and the server answering within seconds), else one ConfigError."""
    if os.path.isfile(path):
        return
    get = f"run once with network access ({how}), or download {url} to {path}"
    if offline_mode():
        raise ConfigError(f"{what}: weights file {path} is missing and HF_HUB_OFFLINE=1: {get}")
    reason = reachable(url)
    if reason is not None:
        raise ConfigError(
            f"{what}: weights file {path} is missing and {url} cannot be reached ({reason}): {get}"
        )
