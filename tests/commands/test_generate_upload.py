"""`autotraining generate` and `autotraining upload`, against a small local HTTP server running handlers.upload."""
from __future__ import annotations

import argparse
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ingest_fixtures import stored

import handlers.upload
from autotraining.aws import Aws
from autotraining.generator import generate
from autotraining.schema import Schema
from autotraining.validation import validate_records
from autotraining_tools.cli import build_parser, main
from autotraining_tools.rowfiles import read_rows


@dataclass
class Api:
    """A local stand-in for API Gateway: POST /records → handlers.upload.handler; can answer 503 first."""

    url: str
    fail_first: int = 0
    requests: list[int] = field(default_factory=list)  # status of every request, in order


@pytest.fixture
def api(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in aws.settings.to_env().items():
        if value:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("AUTOTRAINING_API_URL", raising=False)
    state = Api(url="")
    lock = threading.Lock()

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode("utf-8")
            with lock:
                failing = state.fail_first > 0
                state.fail_first -= 1
            if failing:
                response = {"statusCode": 503, "headers": {"content-type": "application/json"},
                            "body": json.dumps({"message": "the records table is busy; retry the same request"})}
            else:
                event = {"version": "2.0", "routeKey": "POST /records", "rawPath": self.path,
                         "requestContext": {"http": {"method": "POST", "path": self.path}},
                         "headers": {"content-type": "application/json"}, "body": body, "isBase64Encoded": False}
                response = handlers.upload.handler(event, None)
            with lock:
                state.requests.append(response["statusCode"])
            payload = response["body"].encode("utf-8")
            self.send_response(response["statusCode"])
            for k, v in response["headers"].items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def cli(*argv: str) -> int:
    return main(list(argv))


# -- generate ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_generate_with_the_same_seed_writes_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    a, b, c = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}", tmp_path / f"c.{fmt}"
    assert cli("generate", "-n", "200", "--seed", "5", "--out", str(a)) == 0
    assert cli("generate", "-n", "200", "--seed", "5", "--out", str(b)) == 0
    assert cli("generate", "-n", "200", "--seed", "6", "--out", str(c)) == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_generated_file_reads_back_as_the_generator_records(tmp_path: Path, schema: Schema, fmt: str) -> None:
    path = tmp_path / f"out.{fmt}"
    assert cli("generate", "-n", "50", "--seed", "9", "--out", str(path)) == 0
    text = path.read_text()
    rows = read_rows(text, fmt)
    assert validate_records(list(rows.rows), schema) == generate(schema, 50, seed=9)
    first_data_line = 2 if fmt in ("csv", "json") else 1
    assert rows.lines == tuple(range(first_data_line, first_data_line + 50))


def test_generate_without_out_writes_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.jsonl"
    cli("generate", "-n", "20", "--seed", "2", "--out", str(path))
    capsys.readouterr()
    assert cli("generate", "-n", "20", "--seed", "2") == 0
    assert capsys.readouterr().out == path.read_text()


def test_generated_labels_follow_the_documented_rule_with_every_label_present(schema: Schema) -> None:
    from autotraining.generator import comfort_label

    records = generate(schema, 3000, seed=1)
    assert all(r.label == comfort_label(*r.features) for r in records)
    shares = {label: sum(r.label == label for r in records) / len(records) for label in schema.labels}
    assert min(shares.values()) > 0.15, shares


def test_generate_posts_straight_to_the_api(api: Api, aws: Aws, schema: Schema) -> None:
    assert cli("generate", "-n", "30", "--seed", "4", "--api", api.url, "--chunk", "10", "--quiet") == 0
    assert api.requests == [201, 201, 201]
    assert sorted(stored(aws, schema).values(), key=lambda r: r.id) == generate(schema, 30, seed=4)


def test_generate_refuses_out_and_api_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli("generate", "--out", str(tmp_path / "x"), "--api", "http://127.0.0.1:1")
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# -- upload ------------------------------------------------------------------------------------------

def bad_files(schema: Schema) -> dict[str, tuple[str, list[str]]]:
    """name → (content, the error lines `upload` must print), bad rows on known file lines."""
    rows = [r.to_log_dict(schema) for r in generate(schema, 6, seed=3)]
    rows[2] = {**rows[2], "temp": 500}
    rows[4] = {**rows[4], "label": "hot", "colour": "red"}
    jsonl = "\n".join(json.dumps(r) for r in rows[:3]) + "\n\n" + "\n".join(json.dumps(r) for r in rows[3:]) + "\n"
    header = "id,temp,rh,clo,wind,label,created"
    csv_lines = [header] + [",".join(str(r.get(k, "")) for k in header.split(",")) for r in rows]
    csv_lines[3] = csv_lines[3].replace(",500,", ",hot-ish,")
    csv_lines[5] = csv_lines[5].replace(",hot,", ",,")
    pretty = json.dumps({"records": rows}, indent=2)
    row_line = [n for n, line in enumerate(pretty.splitlines(), start=1) if line.strip() == "{"][1:]  # [0]: the top level
    allowed = "clo, created, id, label, rh, temp, wind"
    return {
        "bad.jsonl": (jsonl, ["bad.jsonl:3: field 'temp': 500 is out of range [-40, 130]",
                              f"bad.jsonl:6: field 'colour': unknown field; allowed: {allowed}",
                              "bad.jsonl:6: field 'label': 'hot' is not a known label; one of cold, ok, warm"]),
        "bad.csv": ("\n".join(csv_lines) + "\n", ["bad.csv:4: field 'temp': must be a number, got a string",
                                                  "bad.csv:6: field 'label': missing; one of cold, ok, warm"]),
        "bad.json": (pretty, [f"bad.json:{row_line[2]}: field 'temp': 500 is out of range [-40, 130]",
                              f"bad.json:{row_line[4]}: field 'colour': unknown field; allowed: {allowed}",
                              f"bad.json:{row_line[4]}: field 'label': 'hot' is not a known label; "
                              "one of cold, ok, warm"]),
    }


@pytest.mark.parametrize("name", ["bad.jsonl", "bad.csv", "bad.json"])
def test_upload_reports_bad_rows_by_line_and_sends_nothing(api: Api, aws: Aws, schema: Schema, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str], name: str) -> None:
    content, expected = bad_files(schema)[name]
    (tmp_path / name).write_text(content)
    code = cli("upload", str(tmp_path / name), "--api", api.url)
    err = capsys.readouterr().err
    assert code == 2
    assert [line.replace(str(tmp_path) + "/", "") for line in err.splitlines()[:-1]] == expected
    assert err.splitlines()[-1].endswith("invalid; nothing was sent")
    assert "Traceback" not in err
    assert api.requests == [] and stored(aws, schema) == {}


def test_unparsable_jsonl_line_is_reported_by_line(api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"temp": 70}\n{"temp": 7\n')
    assert cli("upload", str(path), "--api", api.url) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: not JSON" in err and api.requests == []


def test_nan_in_a_json_file_is_reported_by_line(api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nan.json"
    path.write_text('[\n {"temp": 70, "rh": 1, "clo": 1, "wind": 0, "label": "ok"},\n'
                    ' {"temp": NaN, "rh": 1, "clo": 1, "wind": Infinity, "label": "ok"}\n]\n')
    assert cli("upload", str(path), "--api", api.url) == 2
    err = capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    assert err.splitlines()[:2] == ["nan.json:3: field 'temp': must be a finite number",
                                    "nan.json:3: field 'wind': must be a finite number"]
    assert api.requests == []


def test_upload_reads_standard_input(api: Api, aws: Aws, schema: Schema, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [json.dumps(r) for r in [r.to_log_dict(schema) for r in generate(schema, 7, seed=12)]]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert cli("upload", "-", "--api", api.url, "--quiet") == 0
    assert sorted(stored(aws, schema).values(), key=lambda r: r.id) == generate(schema, 7, seed=12)


def test_upload_posts_in_chunks_and_retries_a_503(api: Api, aws: Aws, schema: Schema, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "records.jsonl"
    assert cli("generate", "-n", "250", "--seed", "11", "--out", str(path)) == 0
    api.fail_first = 1
    assert cli("upload", str(path), "--api", api.url, "--chunk", "100", "--backoff", "0") == 0
    assert api.requests == [503, 201, 201, 201]
    assert len(stored(aws, schema)) == 250
    assert "sent 250 records" in capsys.readouterr().out


def test_upload_of_the_same_file_twice_stores_each_record_once(api: Api, aws: Aws, schema: Schema,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "no-ids.csv"
    path.write_text("temp,rh,clo,wind,label\n70,50,0.6,0.2,ok\n60,40,0.5,1,cold\n\n85,60,0.6,0.1,warm\n")
    assert cli("upload", str(path), "--api", api.url, "--quiet") == 0
    assert cli("upload", str(path), "--api", api.url, "--quiet") == 0
    table = stored(aws, schema)
    assert len(table) == 3 and {r.label for r in table.values()} == {"ok", "cold", "warm"}
    assert all(i.startswith("up-") and i.endswith(("-2", "-3", "-5")) for i in table)


def test_upload_gives_up_after_the_retry_bound_without_a_traceback(api: Api, aws: Aws, schema: Schema,
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    assert cli("generate", "-n", "5", "--seed", "1", "--out", str(path)) == 0
    api.fail_first = 100
    assert cli("upload", str(path), "--api", api.url, "--retries", "3", "--backoff", "0", "--quiet") == 2
    err = capsys.readouterr().err
    assert api.requests == [503, 503, 503]
    assert "gave up after 3 attempts (HTTP 503" in err and "0 of 5 records were sent" in err
    assert "Traceback" not in err and stored(aws, schema) == {}


def test_unreachable_api_is_retried_then_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    path = tmp_path / "r.jsonl"
    cli("generate", "-n", "2", "--out", str(path))
    code = cli("upload", str(path), "--api", f"http://127.0.0.1:{port}", "--retries", "2", "--backoff", "0")
    err = capsys.readouterr().err
    assert code == 2 and "gave up after 2 attempts (cannot reach" in err


def test_server_refusal_is_reported_by_line(api: Api, aws: Aws, schema: Schema, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A client with a looser schema than the API's: the API's 400 is mapped back to file lines."""
    loose = tmp_path / "schema.json"
    loose.write_text(json.dumps({**schema.to_dict(), "features": [
        {**f.to_dict(), "max": 1000} for f in schema.features]}))
    path = tmp_path / "r.jsonl"
    rows = [r.to_log_dict(schema) for r in generate(schema, 3, seed=1)]
    rows[1]["temp"] = 400
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert cli("upload", str(path), "--api", api.url, "--schema", str(loose)) == 2
    err = capsys.readouterr().err
    assert err == ("autotraining upload: error: the API refused a request: HTTP 400: line 2, field 'temp': "
                   "400.0 is out of range [-40, 130]; 0 of 3 records were sent before it\n")
    assert stored(aws, schema) == {}


@pytest.mark.parametrize("argv, message", [
    (["upload", "/nonexistent/records.csv", "--api", "http://127.0.0.1:1"], "cannot read /nonexistent/records.csv"),
    (["upload", "FILE"], "give the API's base URL with --api URL"),
    (["upload", "FILE", "--api", "127.0.0.1:8080"], "must start with http://"),
    (["generate", "-n", "0"], "-n must be at least 1"),
])
def test_user_errors_print_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    monkeypatch.delenv("AUTOTRAINING_API_URL", raising=False)
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"temp": 70, "rh": 50, "clo": 0.6, "wind": 0, "label": "ok"}) + "\n")
    assert cli(*[str(path) if a == "FILE" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["generate", "upload"])
def test_every_option_has_help_text(command: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in sub._actions:
        assert action.help and len(action.help) > 10, action.dest
