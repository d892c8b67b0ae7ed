"""Where a model's requests go: this machine, or a service elsewhere (for ``settings.privacy: local_only``).

"Local" means the requests never leave this machine:

- ``local``, ``llamacpp:`` and ``scripted:`` run in this process;
- ``ollama:`` and ``openai-compatible:<model>@<url>`` are local when their server is on a
  loopback address: ``localhost``, ``127.0.0.0/8`` or ``::1`` (Ollama's address comes from
  ``OLLAMA_HOST`` as Ollama reads it). A server elsewhere on your network is not local:
  the library's text would leave the machine. Host names other than ``localhost`` are not
  looked up (a name can point anywhere), so they count as hosted;
- ``hf:`` is hosted (Hugging Face's providers), unless its ``base_url`` is on loopback (a TGI
  server on this machine);
- ``openai:`` is always hosted (OpenAI's API).
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlparse

from rolegraph.models.providers import _ollama_url

__all__ = ["hosted_destination", "is_loopback_url"]


def is_loopback_url(url: str) -> bool:
    """Whether `url`'s host is this machine: ``localhost``, an address in ``127.0.0.0/8``, or ``::1``."""
    try:
        host = urlparse(url.strip()).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hosted_destination(model_string: str, base_url: str | None = None) -> str | None:
    """Where the model `model_string` sends its requests when that is off this machine; None when local.

    Args:
        model_string: A model string (an unknown form is None: it is reported on its own).
        base_url: The model entry's ``base_url`` option (``hf:`` only).
    """
    prefix, _, rest = model_string.strip().partition(":")
    rest = rest.strip()
    if prefix == "openai":
        return "OpenAI's API (api.openai.com)"
    if prefix == "hf":
        if base_url is not None:
            return None if is_loopback_url(base_url) else base_url
        return "Hugging Face's inference providers"
    if prefix == "ollama":
        url = _ollama_url(os.environ.get("OLLAMA_HOST", ""))
        return None if is_loopback_url(url) else f"{url} (from OLLAMA_HOST)"
    if prefix == "openai-compatible":
        url = rest.rpartition("@")[2]
        return None if is_loopback_url(url) else url
    return None
