"""`autotraining predict` and `autotraining status` against a real HTTP gateway serving the real handlers."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from serving_fixtures import commit_rejected, export_model, post_json, publish

from autotraining.generator import generate, generate_features
from autotraining.serving import ModelCache, ModelProxy
from autotraining_tools.cli import main
from autotraining_tools.local.gateway import Gateway
from handlers import infer, model_proxy


@pytest.fixture
def api(aws):
    """The gateway on a free port, wired to this test's in-process AWS."""
    cache, proxy = ModelCache.for_aws(aws), ModelProxy.for_aws(aws)
    handlers = {"infer": lambda e, c: infer.handle(e, aws, cache),
                "model_proxy": lambda e, c: model_proxy.handle(e, aws, proxy)}
    gw = Gateway(port=0, resolver=handlers.__getitem__).start()
    try:
        yield gw.url
    finally:
        gw.stop()


def _rows(schema, n: int) -> list[dict[str, float]]:
    return [dict(zip(schema.feature_names, map(float, r), strict=False)) for r in generate_features(schema, n, seed=21)]


def test_predict_csv_file_prints_a_table_of_labels_and_probabilities(api, aws, schema, tmp_path, capsys):
    round_ = publish(aws, schema, export_model(schema))
    rows = _rows(schema, 4)
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text(",".join(schema.feature_names) + "\n"
                        + "".join(",".join(str(r[f]) for f in schema.feature_names) + "\n" for r in rows))
    assert main(["predict", str(csv_file), "--api", api]) == 0
    out = capsys.readouterr().out.splitlines()
    _, expected = post_json(f"{api}/predict", rows)
    assert out[0].split() == ["#", *schema.feature_names, "label", *[f"p({lb})" for lb in schema.labels]]
    for line, p in zip(out[1:5], expected["predictions"], strict=False):
        cells = line.split()
        assert cells[len(schema.feature_names) + 1] == p["label"]
        assert [float(c) for c in cells[-len(schema.labels):]] == [
            round(p["probabilities"][lb], 4) for lb in schema.labels]
    assert out[-1] == f"model version {round_.version}, 4 rows"


def test_predict_json_lines_from_stdin_prints_the_api_answer(api, aws, schema, monkeypatch, capsys):
    publish(aws, schema, export_model(schema))
    rows = _rows(schema, 7)
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(json.dumps(r) + "\n" for r in rows)))
    assert main(["predict", "-", "--api", api, "--format", "json", "--chunk", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    _, expected = post_json(f"{api}/predict", rows)
    assert printed["version"] == expected["version"]
    assert [p["label"] for p in printed["predictions"]] == [p["label"] for p in expected["predictions"]]
    for got, want in zip(printed["predictions"], expected["predictions"], strict=False):  # 3-row chunks vs one 7-row batch:
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)  # float32 rounding only


def test_predict_reports_invalid_rows_by_line_in_one_line(api, aws, schema, tmp_path, capsys):
    publish(aws, schema, export_model(schema))
    good = _rows(schema, 1)[0]
    lines = [json.dumps(good), "", json.dumps({**good, schema.feature_names[0]: "hot"}), json.dumps(good)]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert main(["predict", str(path), "--api", api]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err == (f"autotraining predict: error: {path}: line 3, field {schema.feature_names[0]!r}: "
                   "must be a number, got a string")


def test_predict_before_any_model_says_so(api, schema, tmp_path, capsys):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"rows": _rows(schema, 2)}))
    assert main(["predict", str(path), "--api", api]) == 2
    err = capsys.readouterr().err
    assert "HTTP 503" in err and "no model has been published yet" in err


@pytest.mark.parametrize("argv, message", [
    (["predict", "/nonexistent/rows.csv", "--api", "http://127.0.0.1:9"], "cannot read /nonexistent/rows.csv"),
    (["predict", "--api", "ftp://x"], "must start with http:// or https://"),
    (["status", "--api", "http://127.0.0.1:9"], "cannot reach the API at http://127.0.0.1:9"),
    (["status", "--api", "http://127.0.0.1:9", "--plot", "out.svg"], "ending in .png"),
])
def test_user_errors_are_one_line_without_traceback(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO('[{"temp": 70}]'))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_status_prints_history_newest_first_with_rejected_rounds_marked(api, aws, schema, capsys):
    assert main(["status", "--api", api]) == 0
    assert capsys.readouterr().out == "no training round has been committed yet\n"
    publish(aws, schema, export_model(schema), records_seen=1000, holdout_accuracy=0.91)
    commit_rejected(aws, schema, records_seen=1500)
    publish(aws, schema, export_model(schema, seed=1), records_seen=2500, holdout_accuracy=0.95,
            prequential_accuracy=0.9)
    assert main(["status", "--api", api]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["version", "status", "serving"]
    assert [line.split()[:3] for line in out[1:]] == [["000003", "published", "000003"],
                                                        ["000002", "REJECTED", "000001"],
                                                        ["000001", "published", "000001"]]
    assert "95.0%" in out[1] and "90.0%" in out[1] and "2500" in out[1]
    assert main(["status", "--api", api, "--limit", "2", "--format", "json"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)["versions"]] == ["000003", "000002"]


def test_status_plot_writes_a_png_of_all_versions(api, aws, schema, tmp_path, capsys):
    publish(aws, schema, export_model(schema), records_seen=1000)
    commit_rejected(aws, schema, records_seen=1500)
    target = tmp_path / "history.png"
    assert main(["status", "--api", api, "--limit", "1", "--plot", str(target)]) == 0
    data = Path(target).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert len(capsys.readouterr().out.splitlines()) == 2  # header + the one row asked for


def test_generated_records_pipe_into_predict_and_labels_are_compared(api, aws, schema, monkeypatch, capsys):
    """`autotraining generate | autotraining predict -`: id/label/created are kept out of the request."""
    publish(aws, schema, export_model(schema))
    records = [r.to_log_dict(schema) for r in generate(schema, 50, seed=3)]
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(json.dumps(r) + "\n" for r in records)))
    assert main(["predict", "--api", api]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[len(schema.feature_names) + 1:len(schema.feature_names) + 3] == ["given", "label"]
    right = sum(line.split()[len(schema.feature_names) + 1] == line.split()[len(schema.feature_names) + 2]
                for line in out[1:-1])
    assert out[-1].endswith(f"{right}/50 given labels predicted ({100 * right / 50:.1f}%)")
    assert right >= 40  # the fixture model learned the generator's rule
