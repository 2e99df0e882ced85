"""`autotraining redrive`: a dead-lettered segment goes back to the pending queue after the fix, and is trained on."""
from __future__ import annotations

import pytest

from autotraining.generator import generate
from autotraining.segments import encode_segment
from autotraining_tools import cli


def _dlq_bodies(waws) -> list[str]:
    out = []
    while True:
        got = waws.sqs.receive_message(QueueUrl=waws.settings.dlq_url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=0).get("Messages", [])
        new = [m["Body"] for m in got if m["Body"] not in out]
        if not new:
            return sorted(out)
        out += new


def test_redrive_moves_a_fixed_segment_back_and_the_worker_trains_on_it(waws, log_segment, make_worker, registry,
                                                                        schema, monkeypatch, capsys) -> None:
    s = waws.settings
    for name, value in s.to_env().items():
        monkeypatch.setenv(name, value)
    records = generate(schema, 40, seed=3)
    bad = log_segment(records, 500)
    waws.s3.put_object(Bucket=s.bucket, Key=bad.key, Body=b"not gzip")
    waws.sqs.send_message(QueueUrl=s.queue_url, MessageBody="not a segment reference")
    make_worker().run()
    assert len(_dlq_bodies(waws)) == 2 and registry.latest() is None

    waws.s3.put_object(Bucket=s.bucket, Key=bad.key, Body=encode_segment(records, schema))  # the fix
    assert cli.main(["redrive", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would move {bad.key}" in out and "would move 1 segment" in out and "left 1 message" in out
    assert len(_dlq_bodies(waws)) == 2  # a dry run moves nothing

    assert cli.main(["redrive"]) == 0
    assert f"moved {bad.key}" in capsys.readouterr().out
    assert _dlq_bodies(waws) == ["not a segment reference"]
    make_worker().run()
    assert registry.latest().records_seen == 40


def test_redrive_without_queues_is_a_one_line_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("AUTOTRAINING_DLQ_URL", raising=False)
    monkeypatch.delenv("AUTOTRAINING_QUEUE_URL", raising=False)
    assert cli.main(["redrive"]) == 2
    assert "no queues" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["redrive", "--max", "0"]])
def test_redrive_refuses_bad_options(argv: list[str], capsys) -> None:
    assert cli.main(argv) == 2
