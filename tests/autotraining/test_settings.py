"""Settings refuse out-of-range knobs at start, naming the variable, instead of failing inside a round."""
from __future__ import annotations

import pytest

from autotraining.settings import ENV, Settings, SettingsError


@pytest.mark.parametrize(("field", "raw"), [
    ("replay_recent_share", "1.5"),
    ("gate_recent_weight", "-0.1"),
    ("drift_delta", "2"),
    ("drift_min_effect", "-1"),
    ("gate_min_kappa", "3"),
    ("reservoir_size", "0"),
])
def test_out_of_range_setting_is_refused_with_its_variable_name(field: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=ENV[field]):
        Settings.from_env(environ={ENV[field]: raw})


def test_defaults_and_edges_are_accepted() -> None:
    s = Settings.from_env(environ={ENV["replay_recent_share"]: "0", ENV["gate_recent_weight"]: "1"})
    assert (s.replay_recent_share, s.gate_recent_weight) == (0.0, 1.0)
    assert Settings().drift_delta == 0.002


def test_worker_cli_stops_with_one_line_on_a_bad_setting(monkeypatch, capsys) -> None:
    from autotraining_tools.cli import main

    monkeypatch.setenv(ENV["replay_recent_share"], "1.5")
    assert main(["worker"]) != 0
    err = capsys.readouterr().err
    assert ENV["replay_recent_share"] in err and "Traceback" not in err
