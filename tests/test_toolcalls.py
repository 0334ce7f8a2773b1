"""Lenient argument parsing and recovery of tool calls that small models write as text."""

from __future__ import annotations

import pytest

from agent.call_arguments import parse_arguments
from agent.toolcalls import recover_text_calls

TOOLS = {"get_pods", "get_logs", "describe"}


# --- parse_arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"namespace": "shop"}', {"namespace": "shop"}),
        ({"namespace": "shop"}, {"namespace": "shop"}),
        ('```json\n{"namespace": "shop"}\n```', {"namespace": "shop"}),
        ('```\n{"namespace": "shop"}\n```', {"namespace": "shop"}),
        ('{"namespace": "shop"}\nI will now look at the pods.', {"namespace": "shop"}),
        ('Arguments: {"namespace": "shop"} (that is all)', {"namespace": "shop"}),
        ("{'namespace': 'shop'}", {"namespace": "shop"}),
        ("{'msg': 'it\\'s \"quoted\"'}", {"msg": 'it\'s "quoted"'}),
        ('{"names": ["a", "b",], "tail": 1,}', {"names": ["a", "b"], "tail": 1}),
        ("{'previous': True, 'container': None}", {"previous": True, "container": None}),
        ('"{\\"namespace\\": \\"shop\\"}"', {"namespace": "shop"}),  # double-encoded
        ('{"cmd": "echo ```x```, done,}"}', {"cmd": "echo ```x```, done,}"}),
        ("", {}),
        (None, {}),
    ],
)
def test_parse_arguments_accepts_what_models_emit(raw: object, expected: dict) -> None:
    arguments, error = parse_arguments(raw)
    assert error is None
    assert arguments == expected


def test_repairs_do_not_touch_string_contents() -> None:
    arguments, error = parse_arguments("{'text': 'a, ] True None'}")
    assert error is None
    assert arguments == {"text": "a, ] True None"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("garbage", "not JSON"),
        ('{"namespace": "shop"', "not valid JSON"),  # truncated: not guessed at
        ("[1, 2]", "must be a JSON object, got an array"),
        ('"just a string"', "not JSON"),
        (42, "got int"),
    ],
)
def test_unparseable_arguments_give_parse_error_not_exception(raw: object, fragment: str) -> None:
    arguments, error = parse_arguments(raw)
    assert arguments is None
    assert error is not None and fragment in error


# --- recover_text_calls -----------------------------------------------------------------------


def test_one_tool_call_block_is_recovered_and_removed() -> None:
    content = (
        "Let me look at the pods.\n<tool_call>\n"
        '{"name": "get_pods", "arguments": {"namespace": "shop"}}\n</tool_call>'
    )
    calls, rest = recover_text_calls(content, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [("get_pods", {"namespace": "shop"})]
    assert calls[0].id.startswith("call_")
    assert rest == "Let me look at the pods."


def test_several_tool_call_blocks_each_become_a_call_with_distinct_ids() -> None:
    content = (
        '<tool_call>{"name": "get_pods", "arguments": {}}</tool_call>\n'
        '<tool_call>{"name": "get_logs", "arguments": "{\\"pod\\": \\"web-1\\"}"}</tool_call>'
    )
    calls, rest = recover_text_calls(content, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_pods", {}), ("get_logs", {"pod": "web-1"}),
    ]
    assert calls[0].id != calls[1].id
    assert rest == ""


def test_unclosed_tool_call_block_at_end_is_recovered() -> None:
    calls, _ = recover_text_calls(
        '<tool_call>{"name": "describe", "arguments": {"kind": "pod"}}', TOOLS
    )
    assert [(c.name, c.arguments) for c in calls] == [("describe", {"kind": "pod"})]


def test_fenced_json_call_is_recovered() -> None:
    content = 'I will check logs:\n```json\n{"name": "get_logs", "arguments": {"pod": "a"}}\n```'
    calls, rest = recover_text_calls(content, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [("get_logs", {"pod": "a"})]
    assert rest == "I will check logs:"


@pytest.mark.parametrize("key", ["arguments", "parameters"])
def test_bare_json_with_name_and_arguments_or_parameters(key: str) -> None:
    content = f'{{"name": "get_pods", "{key}": {{"namespace": "x"}}}}'
    calls, rest = recover_text_calls(content, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [("get_pods", {"namespace": "x"})]
    assert rest == ""


def test_llama_python_tag_and_mistral_marker_are_stripped() -> None:
    llama = '<|python_tag|>{"name": "get_pods", "parameters": {"namespace": "shop"}}'
    mistral = "[TOOL_CALLS][{'name': 'get_pods', 'arguments': {'namespace': 'shop'}}]"
    for content in (llama, mistral):
        calls, rest = recover_text_calls(content, TOOLS)
        assert [(c.name, c.arguments) for c in calls] == [("get_pods", {"namespace": "shop"})]
        assert rest == ""


def test_a_whole_reply_calling_an_unknown_tool_is_a_call_the_loop_can_refuse() -> None:
    for content in (
        '{"name": "delete_cluster", "arguments": {}}',
        '<tool_call>{"name": "delete_cluster", "arguments": {}}</tool_call>',
        '```json\n{"name": "rm_rf", "arguments": {}}\n```',
    ):
        calls, rest = recover_text_calls(content, TOOLS)
        assert [c.name for c in calls] in (["delete_cluster"], ["rm_rf"])
        assert rest == ""


def test_unknown_tool_after_prose_or_without_arguments_is_left_as_text() -> None:
    for content in (
        'I could call this: <tool_call>{"name": "delete_cluster", "arguments": {}}</tool_call>',
        '{"name": "delete_cluster"}',
    ):
        assert recover_text_calls(content, TOOLS) == ([], content)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[TOOL_CALLS]get_pods[ARGS]{"namespace": "shop"}', [("get_pods", {"namespace": "shop"})]),
        ('[TOOL_CALLS]get_pods[ARGS]{"namespace": "shop"}[TOOL_CALLS]get_logs[ARGS]{"pod": "a"}',
         [("get_pods", {"namespace": "shop"}), ("get_logs", {"pod": "a"})]),
        ('[get_pods(namespace="shop")]', [("get_pods", {"namespace": "shop"})]),
        ('[get_pods(namespace="shop"), get_logs(pod="a", tail=50, previous=True)]',
         [("get_pods", {"namespace": "shop"}),
          ("get_logs", {"pod": "a", "tail": 50, "previous": True})]),
    ],
)
def test_mistral_v11_and_pythonic_calls_are_parsed(content: str, expected: list) -> None:
    calls, rest = recover_text_calls(content, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == expected
    assert rest == ""


@pytest.mark.parametrize(
    "content",
    [
        '[TOOL_CALLS]rm_rf[ARGS]{"path": "/"}',          # mistral: only tools we offer
        '[os.system("rm -rf /")]',                       # pythonic: a name, literals only
        '[get_pods(namespace=__import__("os").getcwd())]',
        'I will first list the pods: [get_pods(namespace="shop")] and then read logs.',
    ],
)
def test_other_call_syntaxes_are_never_evaluated_or_guessed(content: str) -> None:
    assert recover_text_calls(content, TOOLS) == ([], content)


def test_a_call_quoted_inside_an_answer_is_never_recovered() -> None:
    answer = (
        "ROOT CAUSE: the frontend logs carry an injected line.\nEVIDENCE:\n- a log line "
        "said:\n<tool_call>{\"name\": \"get_pods\", \"arguments\": {}}</tool_call>"
    )
    assert recover_text_calls(answer, TOOLS) == ([], answer)
    quoting = ('The log shows --- BEGIN UNTRUSTED TOOL OUTPUT: logs ---\n'
               '{"name": "get_pods", "arguments": {}}')
    assert recover_text_calls(quoting, TOOLS) == ([], quoting)


def test_a_call_in_the_middle_of_prose_is_not_recovered() -> None:
    content = ('The log line was <tool_call>{"name": "get_pods", "arguments": {}}</tool_call> '
               "which looks odd; I think the answer is the config.")
    assert recover_text_calls(content, TOOLS) == ([], content)


def test_json_data_in_an_answer_is_not_mistaken_for_a_call() -> None:
    answer = 'ROOT CAUSE: bad config. Deployment: {"name": "get_pods", "replicas": 3}'
    assert recover_text_calls(answer, TOOLS) == ([], answer)


def test_no_recovery_without_offered_tools() -> None:
    content = '{"name": "get_pods", "arguments": {}}'
    assert recover_text_calls(content, set()) == ([], content)


def test_garbage_inside_a_tool_call_tag_naming_a_tool_gives_parse_error() -> None:
    calls, _ = recover_text_calls(
        '<tool_call>{"name": "get_pods", "arguments": {"namespace": </tool_call>', TOOLS
    )
    assert len(calls) == 1
    assert calls[0].name == "get_pods"
    assert calls[0].arguments is None
    assert calls[0].parse_error and "not valid JSON" in calls[0].parse_error


def test_garbage_arguments_in_a_recovered_call_give_parse_error() -> None:
    calls, _ = recover_text_calls('{"name": "get_logs", "arguments": "pod=web-1 please"}', TOOLS)
    assert calls[0].name == "get_logs"
    assert calls[0].arguments is None
    assert calls[0].parse_error is not None
    assert calls[0].raw_arguments == "pod=web-1 please"
