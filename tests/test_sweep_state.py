"""The incremental sweep's state (sweepstate), pure: whatever sweeps observe and in whatever
order their writes land, a state never vouches for a record that was not settled, and its
watermark never passes an open one. Property-based: CI's listings are untrusted input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ci_callback.reconcile import state as sweepstate
from ci_callback.reconcile.state import Observed, State, close

records = st.lists(st.tuples(st.text("0123456789abcdef", min_size=16, max_size=16),
                             st.one_of(st.none(), st.floats(0, 1e6)), st.booleans()), max_size=40)
uppers = st.one_of(st.none(), st.floats(0, 1e6))


def _observe(entries) -> Observed:
    observed = Observed()
    for fp, when, settled in entries:
        observed.add(fp, when, settled)
    return observed


@given(records, uppers, records, uppers)
def test_a_state_vouches_only_for_settled_records_and_stops_at_the_first_open_one(first, up1, second, up2):
    state = close(None, _observe(first), up1)
    state = close(state, _observe(second), up2)
    if state is None:
        return
    settled = {fp for fp, when, ok in first + second if ok and when is not None}
    assert set(state.confirmed) <= settled
    # The last listing's open records hold the watermark back.
    for _fp, when, ok in second:
        if not ok and when is not None:
            assert state.watermark <= when
    assert all(when >= state.watermark for when in state.confirmed.values())


@given(records, uppers)
def test_a_state_reads_back_as_written(entries, upper):
    state = close(None, _observe(entries), upper)
    if state is not None:
        assert State.from_json(state.to_json()) == state


@given(st.one_of(st.none(), st.integers(), st.text(), st.dictionaries(st.text(), st.integers() | st.text())))
def test_anything_else_reads_as_no_state(document):
    assert State.from_json(document) is None or isinstance(document, dict)


def test_a_corrupt_state_reads_as_none():
    assert State.from_json({"schema": 1, "watermark": "x", "confirmed": {}}) is None
    assert State.from_json({"schema": 1, "watermark": 5, "confirmed": {"short": 6}}) is None
    assert State.from_json({"schema": 1, "watermark": 5, "confirmed": {"0" * 16: 4}}) is None  # below its mark
    assert State.from_json({"schema": 2, "watermark": 5, "confirmed": {}}) is None


def test_the_fingerprint_names_kind_id_and_state():
    assert sweepstate.fingerprint("job", "j1", "Success") != sweepstate.fingerprint("job", "j1", "Failed")
    assert len(sweepstate.fingerprint("workflow", "i1", "Success")) == 16
