"""The final-answer envelope: reading a model's answer text back as ``(thought, answer)``."""

from __future__ import annotations

import json

import pytest

from rolegraph.models.envelope import final_text, parse_final


class TestParseFinal:
    def test_reads_what_final_text_writes(self) -> None:
        """The envelope's thought and answer come back as written, integers past 64 bits whole."""
        answer = {"value": "ok", "big": 2**70, "nested": [1.5, None, True]}
        assert parse_final(final_text(answer, "why")) == ("why", answer)

    @pytest.mark.parametrize("text", ['  {"answer": 1}', '{"answer": 1}\n', '\t{"answer": 1} \r\n'])
    def test_whitespace_around_the_json_is_allowed(self, text: str) -> None:
        """Whitespace before or after the object is read past, as json.loads does."""
        assert parse_final(text) == ("", 1)

    @pytest.mark.parametrize("text", ['{"answer": 1} extra', '{"answer": 1}{"answer": 2}', "", "not json", "{"])
    def test_anything_but_one_json_value_is_refused_as_json_loads_refuses_it(self, text: str) -> None:
        """Trailing data, nothing, or text that is not JSON: the error json.loads gives, word for word."""
        with pytest.raises(json.JSONDecodeError) as expected:
            json.loads(text)
        with pytest.raises(json.JSONDecodeError) as got:
            parse_final(text)
        assert str(got.value) == str(expected.value)

    def test_an_object_without_an_answer_is_refused(self) -> None:
        """JSON that is not an envelope is a ValueError naming the expected shape."""
        with pytest.raises(ValueError, match="expected a JSON object"):
            parse_final('{"thought": "x"}')
