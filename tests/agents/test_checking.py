"""Checking claims one by one: a verdict per numbered claim becomes the critic's drop list."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rolegraph.agents.checking import checks_model, compose_critique, numbered_claims
from rolegraph.agents.citations import answer_schema
from rolegraph.agents.extractive import Group
from rolegraph.agents.roles import CritiqueOutput


class TestChecks:
    def test_one_verdict_per_claim(self) -> None:
        """The answer holds exactly one verdict per claim shown, then accept or revise."""
        schema = answer_schema(checks_model(3))
        claims = schema["properties"]["claims"]
        assert (claims["minItems"], claims["maxItems"], claims["items"]["enum"]) == (3, 3, ["supported", "unsupported"])
        with pytest.raises(ValidationError):
            checks_model(3).model_validate({"claims": ["supported"], "verdict": "accept"})

    def test_claims_are_numbered_across_questions(self) -> None:
        """Claims count 1, 2, ... across groups, each with its question and its evidence's source."""
        groups = [Group("Q1?", (("a", "A one."), ("b", "B one."))), Group("", (("c", "C one."),))]
        assert numbered_claims(groups) == (
            "[1] answers: Q1?\n    evidence (a): A one.\n"
            "[2] answers: Q1?\n    evidence (b): B one.\n"
            "[3]\n    evidence (c): C one."
        )

    def test_unsupported_claims_are_dropped_with_an_issue_each(self) -> None:
        """The critic's answer drops the claims judged unsupported, says so per claim, keeps its verdict."""
        critique = compose_critique({"claims": ["supported", "unsupported", "unsupported"], "verdict": "revise"})
        assert critique["drop"] == [2, 3] and critique["verdict"] == "revise"
        assert critique["issues"][0].startswith("claim 2 is not supported")
        assert CritiqueOutput.model_validate(critique).drop == [2, 3]

    def test_critique_schema_asks_for_drop_first(self) -> None:
        """A critic decoding its own answer must write `drop` (it has a default, so older answers still validate)."""
        schema = CritiqueOutput.model_json_schema()
        assert schema["required"][0] == "drop"
        assert CritiqueOutput.model_validate({"verdict": "accept"}).drop == []
