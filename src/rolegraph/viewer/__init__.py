"""The web viewer behind ``rolegraph serve``: runs, a waterfall of spans, the step graph and span details."""

from rolegraph.viewer.app import create_app

__all__ = ["create_app"]
