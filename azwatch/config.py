"""Configuration: one frozen value, built once at the edge and validated whole.

:meth:`Config.from_env` reads the environment variables of the README (the original tool's
seven keep their names and defaults). The CLI maps each ``--flag`` onto the same variable, so
there is exactly one parser. Every bad value is reported on its own line that names the
variable, the value (with secrets masked) and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from azwatch.redaction import MASK, redact_url

#: The original default, ``https://aleph-zero.api.onfinality.io/public``, went offline in
#: November 2025 (polkadot-js/apps#11966); this is the Aleph Zero Foundation's endpoint.
DEFAULT_RPC_URL = "https://rpc.azero.dev"

LogFormat = Literal["text", "json"]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One bad setting: which variable, the value given (secrets masked), what was expected."""

    variable: str
    value: str | None
    expected: str

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.variable} is not set: expected {self.expected}"
        return f"{self.variable}={self.value!r}: expected {self.expected}"


class ConfigError(ValueError):
    """The configuration is invalid; :attr:`problems` lists every bad setting."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything azwatch needs to know. Times are in seconds, lags and rises in blocks.

    Construct it directly in library mode (``Config(container_names=("aleph-node",))``) or
    from a mapping with :meth:`from_env`. Invalid values raise :class:`ConfigError`.
    """

    container_names: tuple[str, ...] = ()
    container_label: str | None = None
    rpc_urls: tuple[str, ...] = (DEFAULT_RPC_URL,)
    check_interval: float = 60.0
    block_lag_20: int = 20
    block_lag_100: int = 100
    monitor_uid: int = 1000
    monitor_gid: int = 996
    cooldown: float = 300.0
    stall_timeout: float = 180.0
    trend_window: float = 300.0
    trend_buckets: int = 5
    falling_behind_min_rise: int = 5
    catch_up_rate: float = 2.0
    backoff_factor: float = 2.0
    max_cooldown: float = 3600.0
    recovery_period: float = 600.0
    rpc_poll_interval: float = 10.0
    rpc_timeout: float = 5.0
    stop_timeout: int = 60
    log_tail: int = 5000
    log_silence_timeout: float = 60.0
    dry_run: bool = False
    http_port: int | None = None
    http_host: str = "127.0.0.1"
    notify_urls: tuple[str, ...] = field(default=(), repr=False)
    log_format: LogFormat = "text"
    log_level: str = "INFO"
    docker_host: str | None = None

    def __post_init__(self) -> None:
        problems = _check(self)
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """Build a config from environment-style *environ*; unset or empty means default.

        Raises:
            ConfigError: listing every variable whose value is unusable.
        """
        values: dict[str, Any] = {}
        problems: list[ConfigProblem] = []
        for setting in SETTINGS:
            raw = environ.get(setting.variable, "").strip()
            if not raw:
                continue
            try:
                values[setting.field] = setting.parse(raw)
            except ValueError:
                problems.append(
                    ConfigProblem(setting.variable, setting.show(raw), setting.expected)
                )
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    def redacted(self) -> dict[str, object]:
        """The settings as a dict safe to log: URLs masked, notification URLs hidden."""
        shown: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "rpc_urls":
                value = [redact_url(url) for url in value]
            elif item.name == "notify_urls":
                value = [_scheme_only(url) for url in value]
            elif isinstance(value, tuple):
                value = list(value)
            shown[item.name] = value
        return shown

    @property
    def watches_label(self) -> tuple[str, str | None] | None:
        """``CONTAINER_LABEL`` split into key and optional value, or ``None``."""
        if self.container_label is None:
            return None
        key, sep, value = self.container_label.partition("=")
        return (key, value if sep else None)


# --- parsing ----------------------------------------------------------------------------------


def _number(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _whole(raw: str) -> int:
    return int(raw, 10)


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def _items(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _log_format(raw: str) -> str:
    lowered = raw.lower()
    if lowered not in {"text", "json"}:
        raise ValueError(raw)
    return lowered


def _log_level(raw: str) -> str:
    upper = raw.upper()
    upper = "WARNING" if upper == "WARN" else upper
    if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(raw)
    return upper


def _scheme_only(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


def _show_plain(raw: str) -> str:
    return raw


def _show_urls(raw: str) -> str:
    return ",".join(redact_url(url) for url in _items(raw))


def _show_hidden(raw: str) -> str:
    return ",".join(_scheme_only(url) for url in _items(raw))


@dataclass(frozen=True, slots=True)
class Setting:
    """How one environment variable maps onto a :class:`Config` field."""

    variable: str
    field: str
    parse: Callable[[str], object]
    expected: str
    help: str
    show: Callable[[str], str] = _show_plain

    @property
    def flag(self) -> str:
        """The CLI flag carrying the same setting."""
        return "--" + self.variable.lower().replace("_", "-")


SECONDS = "a number of seconds"
BLOCKS = "a whole number of blocks"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CONTAINER_NAME",
        "container_names",
        _items,
        "container names, comma-separated",
        "container(s) to watch, comma-separated",
    ),
    Setting(
        "RPC_URL",
        "rpc_urls",
        _items,
        "http(s) URLs, comma-separated",
        "reference JSON-RPC endpoint(s), comma-separated",
        _show_urls,
    ),
    Setting(
        "CHECK_INTERVAL",
        "check_interval",
        _number,
        SECONDS,
        "seconds between summary lines; longest wait between evaluations",
    ),
    Setting("BLOCK_LAG_20", "block_lag_20", _whole, BLOCKS, "moderate lag threshold (blocks)"),
    Setting("BLOCK_LAG_100", "block_lag_100", _whole, BLOCKS, "severe lag threshold (blocks)"),
    Setting("MONITOR_UID", "monitor_uid", _whole, "a numeric user id", "user the image runs as"),
    Setting(
        "MONITOR_GID",
        "monitor_gid",
        _whole,
        "a numeric group id",
        "group the image runs as (must own the Docker socket)",
    ),
    Setting(
        "COOLDOWN", "cooldown", _number, SECONDS, "seconds after a run starts before any restart"
    ),
    Setting(
        "STALL_TIMEOUT",
        "stall_timeout",
        _number,
        SECONDS,
        "seconds without local progress that make a stall",
    ),
    Setting(
        "TREND_WINDOW",
        "trend_window",
        _number,
        SECONDS,
        "falling-behind window and catch-up measuring window (seconds)",
    ),
    Setting(
        "TREND_BUCKETS",
        "trend_buckets",
        _whole,
        "a whole number of buckets",
        "buckets the falling-behind window is split into",
    ),
    Setting(
        "FALLING_BEHIND_MIN_RISE",
        "falling_behind_min_rise",
        _whole,
        BLOCKS,
        "blocks the lag must rise over the window",
    ),
    Setting(
        "CATCH_UP_RATE",
        "catch_up_rate",
        _number,
        "a rate in blocks per second",
        "net blocks/s of shrinking lag that make a node 'catching up' (0: off)",
    ),
    Setting(
        "BACKOFF_FACTOR",
        "backoff_factor",
        _number,
        "a factor",
        "cooldown multiplier per restart that did not help",
    ),
    Setting("MAX_COOLDOWN", "max_cooldown", _number, SECONDS, "cap of the backed-off cooldown"),
    Setting(
        "RECOVERY_PERIOD",
        "recovery_period",
        _number,
        SECONDS,
        "seconds of lag <= BLOCK_LAG_20 that reset the back-off",
    ),
    Setting(
        "RPC_POLL_INTERVAL", "rpc_poll_interval", _number, SECONDS, "seconds between head polls"
    ),
    Setting("RPC_TIMEOUT", "rpc_timeout", _number, SECONDS, "per-request deadline (seconds)"),
    Setting(
        "STOP_TIMEOUT",
        "stop_timeout",
        _whole,
        "a whole number of seconds",
        "grace given to the node on restart before Docker kills it",
    ),
    Setting(
        "LOG_TAIL",
        "log_tail",
        _whole,
        "a whole number of lines",
        "lines of the current run read when attaching",
    ),
    Setting(
        "LOG_SILENCE_TIMEOUT",
        "log_silence_timeout",
        _number,
        SECONDS,
        "seconds without a line before the log stream is re-attached",
    ),
    Setting("DRY_RUN", "dry_run", _boolean, "true or false", "decide and log, never restart"),
    Setting(
        "HTTP_PORT",
        "http_port",
        _whole,
        "a TCP port (0-65535)",
        "serve /metrics, /healthz and /status on this port",
    ),
    Setting(
        "HTTP_HOST", "http_host", str, "a host or address", "address the HTTP endpoint binds to"
    ),
    Setting(
        "NOTIFY_URLS",
        "notify_urls",
        _items,
        "apprise URLs, comma-separated",
        "apprise URLs told of restarts and important transitions",
        _show_hidden,
    ),
    Setting(
        "CONTAINER_LABEL",
        "container_label",
        str,
        "a label, key=value or key",
        "watch every container with this label",
    ),
    Setting("LOG_FORMAT", "log_format", _log_format, "text or json", "log line format"),
    Setting("LOG_LEVEL", "log_level", _log_level, "DEBUG, INFO, WARNING or ERROR", "log level"),
    Setting(
        "DOCKER_HOST",
        "docker_host",
        str,
        "a unix://, tcp://, http(s):// or ssh:// URL",
        "Docker Engine address (default: Docker's own)",
        redact_url,
    ),
)

_BY_FIELD = {setting.field: setting for setting in SETTINGS}


def _check(config: Config) -> list[ConfigProblem]:
    """Every range and consistency problem of *config*, one per setting."""
    problems: list[ConfigProblem] = []

    def bad(name: str, value: object, expected: str) -> None:
        setting = _BY_FIELD[name]
        if isinstance(value, tuple):
            text = ",".join(value)
        elif isinstance(value, float):
            text = f"{value:g}"
        else:
            text = str(value)
        problems.append(ConfigProblem(setting.variable, setting.show(text), expected))

    for name, low, expected in (
        ("check_interval", 0.0, "a number of seconds > 0"),
        ("stall_timeout", 0.0, "a number of seconds > 0"),
        ("trend_window", 0.0, "a number of seconds > 0"),
        ("rpc_poll_interval", 0.0, "a number of seconds > 0"),
        ("rpc_timeout", 0.0, "a number of seconds > 0"),
        ("log_silence_timeout", 0.0, "a number of seconds > 0"),
    ):
        value = getattr(config, name)
        if not (math.isfinite(value) and value > low):
            bad(name, value, expected)
    for name in ("cooldown", "recovery_period", "catch_up_rate"):
        value = getattr(config, name)
        if not (math.isfinite(value) and value >= 0):
            bad(name, value, f"{_BY_FIELD[name].expected} >= 0")
    for name in (
        "block_lag_20",
        "block_lag_100",
        "falling_behind_min_rise",
        "monitor_uid",
        "monitor_gid",
        "stop_timeout",
        "log_tail",
    ):
        if getattr(config, name) < 0:
            bad(name, getattr(config, name), f"{_BY_FIELD[name].expected} >= 0")
    if config.block_lag_20 >= config.block_lag_100 >= 0:
        bad(
            "block_lag_20",
            config.block_lag_20,
            f"a lag below BLOCK_LAG_100 ({config.block_lag_100})",
        )
    if config.trend_buckets < 2:
        bad("trend_buckets", config.trend_buckets, "a whole number of buckets >= 2")
    if not (math.isfinite(config.backoff_factor) and config.backoff_factor >= 1):
        bad("backoff_factor", config.backoff_factor, "a factor >= 1 (1: fixed cooldown)")
    if not (math.isfinite(config.max_cooldown) and config.max_cooldown >= config.cooldown):
        bad(
            "max_cooldown",
            config.max_cooldown,
            f"a number of seconds >= COOLDOWN ({config.cooldown:g})",
        )
    if not config.rpc_urls:
        bad("rpc_urls", config.rpc_urls, "at least one http(s) URL")
    for url in config.rpc_urls:
        try:
            parts = urlsplit(url)
            has_host = bool(parts.hostname)
        except ValueError:
            has_host = False
        if parts.scheme not in {"http", "https"} or not has_host:
            bad("rpc_urls", (url,), "http(s) URLs, comma-separated")
            break
    for url in config.notify_urls:
        if "://" not in url:
            bad("notify_urls", (url,), "apprise URLs such as json://host/path or tgram://…")
            break
    if not config.container_names and not config.container_label:
        problems.append(
            ConfigProblem(
                "CONTAINER_NAME",
                None,
                "the name of the node container (or CONTAINER_LABEL=key=value)",
            )
        )
    if any(not name or "," in name for name in config.container_names):
        bad("container_names", config.container_names, "container names, comma-separated")
    if config.container_label is not None and not config.container_label.partition("=")[0]:
        bad("container_label", config.container_label, "a label, key=value or key")
    if config.http_port is not None and not 0 <= config.http_port <= 65535:
        bad("http_port", config.http_port, "a TCP port (0-65535)")
    if config.docker_host is not None and urlsplit(config.docker_host).scheme not in {
        "unix",
        "tcp",
        "http",
        "https",
        "ssh",
    }:
        bad("docker_host", config.docker_host, _BY_FIELD["docker_host"].expected)
    return problems


# --- per-container overrides ------------------------------------------------------------------

#: Labels ``azwatch.<setting>`` (e.g. ``azwatch.block_lag_100=200``) override these settings
#: for one container; the names are the variables', case-insensitive.
LABEL_PREFIX = "azwatch."
OVERRIDABLE = frozenset(
    {
        "BLOCK_LAG_20",
        "BLOCK_LAG_100",
        "COOLDOWN",
        "STALL_TIMEOUT",
        "TREND_WINDOW",
        "TREND_BUCKETS",
        "FALLING_BEHIND_MIN_RISE",
        "CATCH_UP_RATE",
        "BACKOFF_FACTOR",
        "MAX_COOLDOWN",
        "RECOVERY_PERIOD",
        "STOP_TIMEOUT",
        "DRY_RUN",
    }
)
_BY_VARIABLE = {setting.variable: setting for setting in SETTINGS}


def with_label_overrides(
    config: Config, labels: Mapping[str, str]
) -> tuple[Config, dict[str, object], list[str]]:
    """*config* with a container's ``azwatch.<setting>`` labels applied.

    Returns the new config, the overrides applied (variable → value) and one line per label
    that was ignored (unknown setting, bad value, or an inconsistent combination).
    """
    values: dict[str, Any] = {}
    shown: dict[str, object] = {}
    ignored: list[str] = []
    for key, raw in sorted(labels.items()):
        if not key.lower().startswith(LABEL_PREFIX):
            continue
        variable = key[len(LABEL_PREFIX) :].upper().replace(".", "_").replace("-", "_")
        if variable not in _BY_VARIABLE:
            continue  # not a setting: a selector such as azwatch.enable, or the user's own
        if variable not in OVERRIDABLE:
            ignored.append(f"label {key}: {variable} cannot be set per container")
            continue
        setting = _BY_VARIABLE[variable]
        try:
            values[setting.field] = setting.parse(raw.strip())
        except ValueError:
            ignored.append(f"label {key}={raw!r}: expected {setting.expected}")
            continue
        shown[variable] = values[setting.field]
    if not values:
        return config, {}, ignored
    try:
        return replace(config, **values), shown, ignored
    except ConfigError as error:
        ignored.extend(f"labels: {problem}" for problem in error.problems)
        return config, {}, ignored
