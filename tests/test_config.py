"""Configuration: the original tool's variables, defaults, and one clear line per bad value."""

from __future__ import annotations

from dataclasses import fields

import pytest

from azwatch.config import (
    DEFAULT_RPC_URL,
    SETTINGS,
    Config,
    ConfigError,
    with_label_overrides,
)
from azwatch.redaction import endpoint_label, redact_url

BASE = {"CONTAINER_NAME": "aleph-node"}


def test_defaults_match_the_original_tool_and_the_spec() -> None:
    """Unset variables take the documented defaults."""
    config = Config.from_env(BASE)
    assert config.container_names == ("aleph-node",)
    assert (DEFAULT_RPC_URL,) == config.rpc_urls == ("https://rpc.azero.dev",)
    assert (
        config.check_interval,
        config.block_lag_20,
        config.block_lag_100,
        config.monitor_uid,
        config.monitor_gid,
    ) == (60, 20, 100, 1000, 996)
    assert (
        config.cooldown,
        config.stall_timeout,
        config.trend_window,
        config.trend_buckets,
        config.falling_behind_min_rise,
        config.catch_up_rate,
    ) == (300, 180, 300, 5, 5, 2)
    assert (
        config.backoff_factor,
        config.max_cooldown,
        config.recovery_period,
        config.rpc_poll_interval,
        config.rpc_timeout,
        config.stop_timeout,
        config.log_tail,
        config.log_silence_timeout,
    ) == (2, 3600, 600, 10, 5, 60, 5000, 60)
    assert config.dry_run is False
    assert config.http_port is None
    assert config.http_host == "127.0.0.1"
    assert config.notify_urls == ()
    assert (config.log_format, config.log_level) == ("text", "INFO")
    assert config.docker_host is None


def test_every_variable_is_read() -> None:
    """Each variable of the table reaches its field."""
    env = {
        "CONTAINER_NAME": "a, b ,c",
        "RPC_URL": "https://one.example/rpc,http://127.0.0.1:9944",
        "CHECK_INTERVAL": "0.5",
        "BLOCK_LAG_20": "30",
        "BLOCK_LAG_100": "300",
        "MONITOR_UID": "1001",
        "MONITOR_GID": "999",
        "COOLDOWN": "12.5",
        "STALL_TIMEOUT": "90",
        "TREND_WINDOW": "120",
        "TREND_BUCKETS": "4",
        "FALLING_BEHIND_MIN_RISE": "3",
        "CATCH_UP_RATE": "0",
        "BACKOFF_FACTOR": "1",
        "MAX_COOLDOWN": "100",
        "RECOVERY_PERIOD": "30",
        "RPC_POLL_INTERVAL": "2",
        "RPC_TIMEOUT": "1",
        "DOCKER_TIMEOUT": "2.5",
        "STOP_TIMEOUT": "15",
        "NODE_RPC_URL": "http://127.0.0.1:9944",
        "NODE_METRICS_URL": "http://127.0.0.1:9615/metrics",
        "FINALITY_TIMEOUT": "600",
        "FINALITY_MIN_RISE": "30",
        "LOG_TAIL": "0",
        "LOG_SILENCE_TIMEOUT": "45",
        "DRY_RUN": "yes",
        "CHECK_CHAIN": "no",
        "HTTP_PORT": "9615",
        "HTTP_HOST": "0.0.0.0",
        "NOTIFY_URLS": "json://127.0.0.1:8000/hook, tgram://bot/chat",
        "CONTAINER_LABEL": "azwatch.enable=true",
        "LOG_FORMAT": "JSON",
        "LOG_LEVEL": "warn",
        "DOCKER_HOST": "tcp://socket-proxy:2375",
        "CONTROL_TOKEN": "c0ntrol-t0ken-0123456789",
        "RESTART_VIA": "Docker",
        "PROBE_PERIOD": "15",
    }
    config = Config.from_env(env)
    assert config.container_names == ("a", "b", "c")
    assert config.rpc_urls == ("https://one.example/rpc", "http://127.0.0.1:9944")
    assert config.check_interval == 0.5
    assert (
        config.block_lag_20,
        config.block_lag_100,
        config.monitor_uid,
        config.monitor_gid,
    ) == (30, 300, 1001, 999)
    assert (
        config.cooldown,
        config.stall_timeout,
        config.trend_window,
        config.trend_buckets,
        config.falling_behind_min_rise,
        config.catch_up_rate,
    ) == (12.5, 90, 120, 4, 3, 0)
    assert (
        config.backoff_factor,
        config.max_cooldown,
        config.recovery_period,
        config.rpc_poll_interval,
        config.rpc_timeout,
        config.docker_timeout,
        config.stop_timeout,
        config.log_tail,
        config.log_silence_timeout,
    ) == (1, 100, 30, 2, 1, 2.5, 15, 0, 45)
    assert config.dry_run is True
    assert config.check_chain is False
    assert (config.http_port, config.http_host) == (9615, "0.0.0.0")
    assert config.notify_urls == ("json://127.0.0.1:8000/hook", "tgram://bot/chat")
    assert config.watches_label == ("azwatch.enable", "true")
    assert (config.log_format, config.log_level) == ("json", "WARNING")
    assert config.docker_host == "tcp://socket-proxy:2375"
    assert config.control_token == "c0ntrol-t0ken-0123456789"
    assert (config.restart_via, config.probe_period) == ("docker", 15)
    assert (config.node_rpc_url, config.node_metrics_url) == (
        "http://127.0.0.1:9944",
        "http://127.0.0.1:9615/metrics",
    )
    assert (config.finality_timeout, config.finality_min_rise) == (600, 30)
    assert {setting.variable for setting in SETTINGS} - {"RPC_URL", "CONTAINER_NAME"} <= set(env)


def test_the_table_is_the_config_fields() -> None:
    """SETTINGS is read off Config: one setting per field, in order, each with its default;
    no variable or flag twice."""
    assert [item.field_name for item in SETTINGS] == [item.name for item in fields(Config)]
    assert [item.default for item in SETTINGS] == [item.default for item in fields(Config)]
    assert len({item.variable for item in SETTINGS}) == len(SETTINGS)
    assert len({item.flag for item in SETTINGS}) == len(SETTINGS)
    assert Config(container_names=("aleph-node",)) == Config.from_env(BASE)


def test_label_overrides_follow_the_table() -> None:
    """A label may set exactly the settings declared per container."""
    config = Config.from_env(BASE)
    for item in SETTINGS:
        label = f"azwatch.{item.variable.lower()}"
        _, applied, ignored = with_label_overrides(config, {label: item.shown_default})
        if item.per_container:
            assert (list(applied), ignored) == ([item.variable], []), item.variable
        else:
            assert applied == {}
            assert ignored == [f"label {label}: {item.variable} cannot be set per container"]


def test_stop_timeout_takes_fractions() -> None:
    """STOP_TIMEOUT is seconds like every other time: fractions allowed, never negative."""
    assert Config.from_env({**BASE, "STOP_TIMEOUT": "1.5"}).stop_timeout == 1.5
    assert isinstance(Config.from_env(BASE).stop_timeout, float)
    with pytest.raises(ConfigError, match=r"STOP_TIMEOUT='-1': expected a number of seconds >= 0"):
        Config.from_env({**BASE, "STOP_TIMEOUT": "-1"})
    changed, applied, _ = with_label_overrides(
        Config.from_env(BASE), {"azwatch.stop_timeout": "2.5"}
    )
    assert (changed.stop_timeout, applied) == (2.5, {"STOP_TIMEOUT": 2.5})


def test_empty_values_mean_default() -> None:
    """`-e VAR=` with nothing after it keeps the default, as an operator expects."""
    assert (
        Config.from_env({**BASE, "CHECK_INTERVAL": "", "BLOCK_LAG_20": "  "}).check_interval == 60
    )


def test_label_alone_is_enough() -> None:
    """CONTAINER_LABEL may replace CONTAINER_NAME."""
    config = Config.from_env({"CONTAINER_LABEL": "azwatch.enable"})
    assert config.watches_label == ("azwatch.enable", None)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"BLOCK_LAG_20": "abc"}, "BLOCK_LAG_20='abc': expected a whole number of blocks"),
        ({"BLOCK_LAG_20": "2.5"}, "BLOCK_LAG_20='2.5': expected a whole number of blocks"),
        ({"CHECK_INTERVAL": "soon"}, "CHECK_INTERVAL='soon': expected a number of seconds"),
        ({"CHECK_INTERVAL": "nan"}, "CHECK_INTERVAL='nan': expected a number of seconds"),
        ({"CHECK_INTERVAL": "0"}, "CHECK_INTERVAL='0': expected a number of seconds > 0"),
        ({"COOLDOWN": "-1"}, "COOLDOWN='-1': expected a number of seconds >= 0"),
        ({"BLOCK_LAG_100": "-5"}, "BLOCK_LAG_100='-5': expected a whole number of blocks >= 0"),
        (
            {"BLOCK_LAG_20": "100", "BLOCK_LAG_100": "100"},
            "BLOCK_LAG_20='100': expected a lag below BLOCK_LAG_100 (100)",
        ),
        ({"RPC_URL": "ws://rpc.example"}, "RPC_URL='ws://rpc.example': expected http(s) URLs"),
        ({"RPC_URL": "rpc.azero.dev"}, "RPC_URL='rpc.azero.dev': expected http(s) URLs"),
        ({"DRY_RUN": "maybe"}, "DRY_RUN='maybe': expected true or false"),
        ({"TREND_BUCKETS": "1"}, "TREND_BUCKETS='1': expected a whole number of buckets >= 2"),
        ({"BACKOFF_FACTOR": "0.5"}, "BACKOFF_FACTOR='0.5': expected a factor >= 1"),
        (
            {"MAX_COOLDOWN": "60"},
            "MAX_COOLDOWN='60': expected a number of seconds >= COOLDOWN (300)",
        ),
        ({"HTTP_PORT": "70000"}, "HTTP_PORT='70000': expected a TCP port (0-65535)"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml': expected text or json"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud': expected DEBUG, INFO, WARNING or ERROR"),
        ({"DOCKER_HOST": "/var/run/docker.sock"}, "DOCKER_HOST='/var/run/docker.sock': expected"),
        ({"NOTIFY_URLS": "not a url"}, "NOTIFY_URLS entry 1 ('***'): expected an apprise URL"),
        ({"CONTAINER_LABEL": "=x"}, "CONTAINER_LABEL='=x': expected a label"),
    ],
)
def test_bad_values_name_variable_value_and_expectation(env: dict[str, str], line: str) -> None:
    """A bad value gives one line naming the variable, the value and what was expected."""
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**BASE, **env})
    assert len(caught.value.problems) == 1
    assert str(caught.value).startswith(line)
    assert "\n" not in str(caught.value)


def test_missing_container_is_reported() -> None:
    """Neither CONTAINER_NAME nor CONTAINER_LABEL: one line saying what to set."""
    with pytest.raises(ConfigError) as caught:
        Config.from_env({})
    assert "CONTAINER_NAME is not set: expected the name of the node container" in str(caught.value)


def test_every_bad_value_is_reported_on_its_own_line() -> None:
    """Several bad values give several lines, none lost."""
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**BASE, "BLOCK_LAG_20": "x", "COOLDOWN": "y", "DRY_RUN": "z"})
    lines = str(caught.value).splitlines()
    assert [line.split("=")[0] for line in lines] == ["BLOCK_LAG_20", "COOLDOWN", "DRY_RUN"]


def test_parse_and_range_problems_are_reported_together() -> None:
    """Values that do not parse do not hide the problems of those that do."""
    with pytest.raises(ConfigError) as caught:
        Config.from_env(
            {
                **BASE,
                "BLOCK_LAG_20": "abc",
                "COOLDOWN": "-5",
                "HTTP_PORT": "99999",
                "DRY_RUN": "maybe",
            }
        )
    assert str(caught.value).splitlines() == [
        "BLOCK_LAG_20='abc': expected a whole number of blocks",
        "COOLDOWN='-5': expected a number of seconds >= 0",
        "DRY_RUN='maybe': expected true or false",
        "HTTP_PORT='99999': expected a TCP port (0-65535)",
    ]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"BLOCK_LAG_20": "abc", "BLOCK_LAG_100": "5"}, "BLOCK_LAG_20"),
        ({"BLOCK_LAG_20": "500", "BLOCK_LAG_100": "lots"}, "BLOCK_LAG_100"),
        ({"BLOCK_LAG_20": "500", "BLOCK_LAG_100": "-1"}, "BLOCK_LAG_100"),
        ({"COOLDOWN": "soon", "MAX_COOLDOWN": "10"}, "COOLDOWN"),
        ({"COOLDOWN": "600", "MAX_COOLDOWN": "never"}, "MAX_COOLDOWN"),
    ],
)
def test_no_consistency_problem_with_an_unusable_value(env: dict[str, str], variable: str) -> None:
    """A check between two settings is not made when one of them is unusable: only that
    value's own problem is reported."""
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**BASE, **env})
    assert [problem.variable for problem in caught.value.problems] == [variable]


def test_secrets_in_urls_never_reach_errors() -> None:
    """An RPC URL with a key is masked in the error about it."""
    with pytest.raises(ConfigError) as caught:
        Config.from_env(
            {**BASE, "RPC_URL": "ftp://user:hunter2@rpc.example/abcdef0123456789abcd?apikey=k3y9"}
        )
    message = str(caught.value)
    for secret in ("hunter2", "user", "abcdef0123456789abcd", "k3y9"):
        assert secret not in message
    assert "rpc.example" in message


def test_bad_notify_urls_are_named_by_position_and_scheme() -> None:
    """Each bad NOTIFY_URLS entry is its own line: its position and scheme, never its secret."""
    with pytest.raises(ConfigError) as caught:
        Config.from_env(
            {
                **BASE,
                "NOTIFY_URLS": "json://127.0.0.1/hook, tgram://, 123456:SECRET, t gram://1:SECRET/9",
            }
        )
    expected = "expected an apprise URL such as json://host/path or tgram://…"
    assert str(caught.value).splitlines() == [
        f"NOTIFY_URLS entry 2 ('tgram://***'): {expected}",
        f"NOTIFY_URLS entry 3 ('***'): {expected} (this one has no scheme)",
        f"NOTIFY_URLS entry 4 ('t gram://***'): {expected}",
    ]
    assert [problem.entry for problem in caught.value.problems] == [2, 3, 4]
    assert "SECRET" not in str(caught.value)


def test_direct_construction_validates() -> None:
    """Library users constructing Config get the same validation."""
    with pytest.raises(ConfigError, match="BLOCK_LAG_20"):
        Config(container_names=("n",), block_lag_20=200)


def test_redacted_masks_urls() -> None:
    """The loggable view of a config masks RPC and notification secrets."""
    config = Config(
        container_names=("n",),
        rpc_urls=("https://u:p@host.example/v1/0123456789abcdef0123?apikey=zz",),
        notify_urls=("tgram://123456:ABCDEF/987",),
        docker_host="tcp://admin:s3cret@proxy.example:2375",
    )
    shown = repr(config.redacted())
    assert "proxy.example:2375" in shown
    for secret in ("u:p", "0123456789abcdef0123", "zz", "123456:ABCDEF", "987", "s3cret"):
        assert secret not in shown
    assert "notify_urls" not in repr(config)  # the dataclass repr hides them too


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://rpc.azero.dev", "https://rpc.azero.dev"),
        ("https://rpc.azero.dev/public", "https://rpc.azero.dev/public"),
        ("https://user:pw@rpc.example:8443/x", "https://***@rpc.example:8443/x"),
        (
            "https://rpc.example/?apikey=abc&chain=azero",
            "https://rpc.example/?apikey=***&chain=azero",
        ),
        (
            "https://aleph-zero-rpc.dwellir.com/1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718",
            "https://aleph-zero-rpc.dwellir.com/***",
        ),
        ("http://[::1]:9944/", "http://[::1]:9944/"),
        ("http://host:notaport/", "***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """User info, key-like query parameters and token-like path segments are masked."""
    assert shown == redact_url(url)


def test_endpoint_label() -> None:
    """Endpoint labels are host[:port] only."""
    assert endpoint_label("https://u:p@rpc.example:8443/secret?key=1") == "rpc.example:8443"
    assert endpoint_label("https://rpc.azero.dev") == "rpc.azero.dev"


def test_label_overrides_apply_per_container() -> None:
    """azwatch.<setting> labels override policy settings; other labels are left alone."""
    config = Config.from_env(BASE)
    labels = {
        "azwatch.block_lag_100": "200",
        "azwatch.COOLDOWN": "60",
        "azwatch.dry-run": "true",
        "azwatch.enable": "true",
        "azwatch.test.pid": "123",
        "com.example.other": "x",
    }
    changed, applied, ignored = with_label_overrides(config, labels)
    assert (changed.block_lag_100, changed.cooldown, changed.dry_run) == (200, 60, True)
    assert applied == {"BLOCK_LAG_100": 200, "COOLDOWN": 60.0, "DRY_RUN": True}
    assert ignored == []
    assert config.block_lag_100 == 100  # the watcher's own config is untouched


def test_bad_label_overrides_are_ignored_with_a_reason() -> None:
    """A bad value, an unknown setting or an inconsistent pair is ignored, each said once."""
    config = Config.from_env(BASE)
    changed, applied, ignored = with_label_overrides(
        config, {"azwatch.block_lag_100": "lots", "azwatch.rpc_url": "http://evil"}
    )
    assert changed == config
    assert applied == {}
    assert ignored == [
        "label azwatch.block_lag_100='lots': expected a whole number of blocks",
        "label azwatch.rpc_url: RPC_URL cannot be set per container",
    ]
    changed, _, ignored = with_label_overrides(config, {"azwatch.block_lag_20": "500"})
    assert changed == config
    assert ignored == ["labels: BLOCK_LAG_20='500': expected a lag below BLOCK_LAG_100 (100)"]


def test_the_control_token_is_never_shown() -> None:
    """CONTROL_TOKEN is masked in the logged settings, left out of repr, and a bad one is
    named without its value."""
    token = "s3cret-token-abcdef0123"
    config = Config.from_env({**BASE, "CONTROL_TOKEN": token})
    assert config.redacted()["control_token"] == "***"
    assert token not in repr(config)
    assert token not in str(config.redacted())
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**BASE, "CONTROL_TOKEN": "short-s3cret"})
    assert str(caught.value) == (
        "CONTROL_TOKEN='***': expected a token of at least 16 characters without spaces "
        "(e.g. openssl rand -hex 16)"
    )
    with pytest.raises(ConfigError, match="CONTROL_TOKEN='\\*\\*\\*'"):
        Config.from_env({**BASE, "CONTROL_TOKEN": "has a space in it, long enough"})
    assert Config.from_env(BASE).control_token is None
