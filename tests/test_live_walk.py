"""The live commands as a control-room user types them, mistakes included."""

from __future__ import annotations

import socket

import pytest

from twin.cli import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_url_twin_serve_prints_is_taken_whole(capsys):
    """`twin serve` prints its broker as mqtt://HOST:PORT?protocol=3.1.1, to be passed whole."""
    url = f"mqtt://127.0.0.1:{_closed_port()}?protocol=3.1.1"
    assert main(["plan", "push", ".", "--broker", url, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--broker" not in err  # the URL passed; the folder, holding no plan, did not


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mqtt://127.0.0.1:99999", "99999 is not a TCP port"),
        ("mqtt://127.0.0.1:0", "0 is not a TCP port"),
        ("mqtt://127.0.0.1:1883?protocol=4", "protocol=4 is neither 5 nor 3.1.1"),
        ("mqtt://127.0.0.1:1883?qos=1", "mqtt://HOST[:PORT][?protocol=5|3.1.1]"),
    ],
)
def test_a_broker_url_out_of_range_is_one_line(url, message, capsys):
    assert main(["devices", "--city", "bondy", "--broker", url, "--for", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--broker" in err and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "no-such-host.invalid"])
def test_a_broker_nobody_answers_at_is_named_with_the_reason(host, capsys):
    """A closed port or a host name with a typo: the field, the URL and why, no traceback."""
    url = f"mqtt://{host}:{_closed_port()}"
    assert main(["devices", "--city", "bondy", "--broker", url, "--for", "1"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith(
        f"twin devices: error: --broker: no MQTT broker answered at mqtt://{host}:"
    )


def test_broker_address_refuses_a_port_out_of_range():
    from live.mqtt import broker_address
    from twin._errors import InputValidationError

    with pytest.raises(InputValidationError, match=r"--broker: .* is not a TCP port"):
        broker_address("mqtt://127.0.0.1:99999")


def test_a_postgresql_server_nobody_answers_at_is_named_with_the_reason(capsys):
    url = f"postgresql://twin@127.0.0.1:{_closed_port()}/twin"
    assert main(["plan", "status", "x", "--city", "bondy", "--db", url]) != 0
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert f"--db: no PostgreSQL server answered at {url}" in err and "refused" in err


def test_a_password_in_the_db_url_is_not_repeated_in_the_error(capsys):
    url = f"postgresql://twin:s3cret@127.0.0.1:{_closed_port()}/twin"
    assert main(["plan", "status", "x", "--city", "bondy", "--db", url]) != 0
    err = capsys.readouterr().err
    assert "--db:" in err and "s3cret" not in err


def test_serve_names_the_http_port_already_taken(mosquitto, tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = f"sqlite:///{tmp_path / 'h.db'}"
        argv = ["serve", "--city", "bondy", "--port", str(port), "--broker", mosquitto.url]
        argv += ["--db", db, "--for", "1"]
        assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"twin serve: error: --port: 127.0.0.1:{port} is taken")


def test_serve_says_once_which_broker_it_could_not_reach(tmp_path, capsys):
    url = f"mqtt://127.0.0.1:{_closed_port()}"
    db = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["serve", "--city", "bondy", "--broker", url, "--db", db, "--for", "1"]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.count("--broker") == 1 and "no MQTT broker answered" in err, err


def test_plan_status_finds_the_city_in_the_plan_id(tmp_path, monkeypatch, capsys):
    """`twin plan status ID` as the issue writes it: the id `lighting-bondy-...` names the store."""
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "status", "lighting-bondy-2024-01-15-0123456789ab"]) == 2
    err = capsys.readouterr().err
    assert "no plan 'lighting-bondy-2024-01-15-0123456789ab'" in err
    assert [p.name for p in tmp_path.iterdir()] == ["twin-live-bondy.db"]


def test_plan_status_of_an_id_naming_no_city_asks_for_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "rollback", "nope", "--broker", "mqtt://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--city:" in err and "'nope' names no city" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no store was created for a guess


def test_devices_checks_its_broker_before_preparing_the_hour(capsys):
    """On Montpellier the hour's traffic DES takes half a minute: a typo is said before it."""
    url = f"mqtt://127.0.0.1:{_closed_port()}"
    assert main(["devices", "--city", "bondy", "--broker", url]) != 0
    out, err = capsys.readouterr()
    assert "ready in" not in out and "--broker: no MQTT broker answered" in err
