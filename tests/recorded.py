"""Recorded scholarly API responses (tests/tools/fixtures/scholarly), read back as status and body bytes.

The files are kept exactly as their origin recorded them (see the README there):
arxiv.py's JSON records, VCR cassettes, plain XML. This module only reads them.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["FIXTURES", "Recorded", "from_arxiv_record", "from_cassette", "from_file"]

FIXTURES = Path(__file__).parent / "tools" / "fixtures" / "scholarly"


@dataclass(frozen=True)
class Recorded:
    """One recorded response."""

    status: int
    body: bytes
    content_type: str


def from_arxiv_record(name: str) -> Recorded:
    """A response recorded by arxiv.py's test harness: JSON with the body decoded as Latin-1."""
    record = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return Recorded(record["status_code"], record["body"].encode("latin-1"), "application/atom+xml")


def from_file(name: str, content_type: str) -> Recorded:
    """A body saved as a plain file, answered with HTTP 200."""
    return Recorded(200, (FIXTURES / name).read_bytes(), content_type)


def from_cassette(name: str, uri_part: str) -> Recorded:
    """The response of the one interaction in VCR cassette `name` whose request URI contains `uri_part`."""
    cassette = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    [interaction] = [i for i in cassette["interactions"] if uri_part in i["request"]["uri"]]
    response = interaction["response"]
    body = response["body"]["string"]
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    if raw[:2] == b"\x1f\x8b":  # recorded still gzip-encoded (habanero's cassettes)
        raw = gzip.decompress(raw)
    headers = {k.lower(): v for k, v in response["headers"].items()}
    content_type = (headers.get("content-type") or ["application/json"])[0]
    return Recorded(response["status"]["code"], raw, content_type)
