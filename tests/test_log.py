"""Log lines: one JSON object per line, whatever the callback carried."""

import io
import json

from ci_callback import log


def test_a_record_stays_on_one_line_even_with_unicode_line_breaks():
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        log.info("callback", id="job\x85one\u2028two\u2029three\nfour", note="鹿")
    finally:
        log.set_stream(None)
    text = stream.getvalue()
    assert len(text.splitlines()) == 1  # str.splitlines also breaks at U+0085/U+2028/U+2029
    record = json.loads(text)
    assert record["id"] == "job\x85one\u2028two\u2029three\nfour" and record["note"] == "鹿"
