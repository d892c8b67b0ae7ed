"""Call ids: built and read back in one module (`rolegraph.agents.call_ids`)."""

from __future__ import annotations

from rolegraph.agents.call_ids import CallId, call_kind, call_prefix, chat_call_id, check_call_id, tool_call_id


class TestCallIds:
    def test_ids_name_step_item_visit_and_call(self) -> None:
        """A for_each item's second model call, and the first tool call it asked for, get the documented ids."""
        prefix = call_prefix("research", 1, 1)
        assert (prefix, chat_call_id(prefix, 2), tool_call_id(prefix, 2, 0)) == (
            "research[1]#1",
            "research[1]#1/chat/2",
            "research[1]#1/tool/2/0",
        )
        assert call_prefix("plan", None, 3) == "plan#3"

    def test_a_retry_gets_its_own_ids(self) -> None:
        """An item's second try (`on_item_error: retry:N`) has a prefix of its own; the first try's is unchanged."""
        assert call_prefix("research", 1, 1, attempt=1) == "research[1]#1"
        assert call_prefix("research", 1, 1, attempt=2) == "research[1]#1~2"
        assert CallId.parse(chat_call_id(call_prefix("research", 1, 1, 2), 1)) == CallId("research[1]#1~2", "chat", 1)

    def test_parse_reads_back_what_was_built(self) -> None:
        """Parsing gives back the prefix, kind and model-call number of both kinds of id."""
        assert CallId.parse("research[1]#1/chat/2") == CallId("research[1]#1", "chat", 2)
        assert CallId.parse("research[1]#1/tool/2/0") == CallId("research[1]#1", "tool", 2)

    def test_previous_chat(self) -> None:
        """The model call before the n-th is the (n-1)-th of the same agent run; the first has none."""
        assert CallId.parse("w#1/chat/3").previous_chat() == "w#1/chat/2"
        assert CallId.parse("w#1/chat/1").previous_chat() is None

    def test_an_id_of_another_shape_is_read_without_error(self) -> None:
        """A damaged or foreign id gives empty parts rather than an exception."""
        assert CallId.parse("garbage") == CallId("garbage", "", None)
        assert CallId.parse("a/chat/x").number is None

    def test_call_kind_is_the_parsed_kind(self) -> None:
        """`call_kind` reads the same kind as `CallId.parse`, for every kind of id and for ids of other shapes."""
        ids = [chat_call_id("w#1", 2), tool_call_id("w#1", 2, 0), check_call_id("w#1", 1, 0), "garbage", "a/", "/x", ""]
        assert (
            [call_kind(i) for i in ids]
            == [CallId.parse(i).kind for i in ids]
            == ["chat", "tool", "check", "", "", "x", ""]
        )
