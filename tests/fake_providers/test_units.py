"""Small pure pieces: durations, fault names, SSE helpers, the catalogue lookup."""

from __future__ import annotations

import pytest

from fake_providers.catalogue import find_model
from fake_providers.durations import go_duration, parse_duration
from fake_providers.faults import ErrorKind, Fault, FaultKind, UnknownFault, fault_for_model, parse_fault
from fake_providers.sse import data_frame, event_frame, truncated
from fake_providers.testing import SSEEvent, parse_sse


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.012, "12ms"),
        (0.0095, "9.5ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (360, "6m0s"),
        (3723.5, "1h2m3.5s"),
        (0.0000015, "1.5µs"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_parse_duration() -> None:
    assert parse_duration("200ms") == 0.2
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("fast") is None


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("fault-429", Fault(kind=FaultKind.HTTP_ERROR, error=ErrorKind.RATE_LIMIT)),
        ("429-quota", Fault(kind=FaultKind.HTTP_ERROR, error=ErrorKind.QUOTA)),
        ("hidden-429", Fault(kind=FaultKind.HTTP_ERROR, error=ErrorKind.HIDDEN_RATE_LIMIT)),
        ("context-length", Fault(kind=FaultKind.HTTP_ERROR, error=ErrorKind.CONTEXT_LENGTH)),
        ("200-error", Fault(kind=FaultKind.ERROR_200)),
        ("200-error-529", Fault(kind=FaultKind.ERROR_200, error=ErrorKind.OVERLOADED)),
        ("inband", Fault(kind=FaultKind.INBAND)),
        ("inband-context-length", Fault(kind=FaultKind.INBAND, error=ErrorKind.CONTEXT_LENGTH)),
        ("reset", Fault(kind=FaultKind.RESET)),
        ("silence", Fault(kind=FaultKind.SILENCE)),
        ("inband-after-3", Fault(kind=FaultKind.INBAND, after=3)),
        ("inband-429-quota-after-1", Fault(kind=FaultKind.INBAND, error=ErrorKind.QUOTA, after=1)),
        ("stall", Fault(kind=FaultKind.STALL)),
        ("stall-after-4", Fault(kind=FaultKind.STALL, after=4)),
        ("cut-5", Fault(kind=FaultKind.CUT, after=5)),
        ("malformed-1", Fault(kind=FaultKind.MALFORMED, after=1)),
        ("slow", Fault(kind=FaultKind.SLOW, first_delay=0.2, gap=0.02)),
        ("slow-50ms", Fault(kind=FaultKind.SLOW, first_delay=0.05, gap=0.05)),
        ("slow-1s-10ms", Fault(kind=FaultKind.SLOW, first_delay=1.0, gap=0.01)),
    ],
)
def test_fault_names(name: str, fault: Fault) -> None:
    assert parse_fault(name) == fault


@pytest.mark.parametrize(
    "name",
    [
        "fault-xyz",
        "stall-x",
        "stall-3-after-2",
        "slow-abc",
        "inband-999",
        "inband-after-x",
        "reset-2",
        "200-errorx",
    ],
)
def test_bad_fault_names(name: str) -> None:
    with pytest.raises(UnknownFault):
        parse_fault(name)


def test_only_fault_models_carry_faults() -> None:
    assert fault_for_model("gpt-4o-mini") is None
    assert fault_for_model("fault-500") == Fault(kind=FaultKind.HTTP_ERROR, error=ErrorKind.SERVER_ERROR)


def test_sse_frames_round_trip() -> None:
    text = (data_frame({"a": 1}) + event_frame("ping", {"type": "ping"}) + b"data: [DONE]\n\n").decode()
    assert text == 'data: {"a":1}\n\nevent: ping\ndata: {"type":"ping"}\n\ndata: [DONE]\n\n'
    assert parse_sse(text) == [
        SSEEvent(event=None, data='{"a":1}'),
        SSEEvent(event="ping", data='{"type":"ping"}'),
        SSEEvent(event=None, data="[DONE]"),
    ]
    assert truncated(data_frame({"key": "value"})) == b'data: {"key":\n\n'


def test_catalogue_lookup_accepts_listing_ids() -> None:
    model = find_model("gpt-4o-mini")
    assert model is not None
    assert find_model("openai/gpt-4o-mini") == model
    assert find_model("models/gemini-2.5-flash") == find_model("gemini-2.5-flash")
    assert find_model("no-such-model") is None
