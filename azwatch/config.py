"""Configuration: one frozen value, built once at the edge and validated whole.

Each setting is declared once, as a field of :class:`Config` made by :func:`setting`: its
environment variable, its type and parser, its default, which values are usable, whether a
container's label may override it, its help text and how to show it without secrets.
:data:`SETTINGS` is read off those fields and drives everything else: :meth:`Config.from_env`,
the validation of every new ``Config``, :func:`with_label_overrides`, and the CLI's flags and
``--help``. Adding a setting is adding one field.

Every problem is reported at once, each on its own line that names the variable, the value
(with secrets masked) and what was expected. The original tool's seven variables keep their
names and defaults.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from azwatch.redaction import MASK, redact_url

#: The original default, ``https://aleph-zero.api.onfinality.io/public``, went offline in
#: November 2025 (polkadot-js/apps#11966); this is the Aleph Zero Foundation's endpoint.
DEFAULT_RPC_URL = "https://rpc.azero.dev"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One bad setting: which variable, the value given (secrets masked), what was expected.

    *entry* is the position (from 1) of the bad entry of a list whose entries are masked when
    shown, such as ``NOTIFY_URLS``: the position is what tells the operator which one it is.
    """

    variable: str
    value: str | None
    expected: str
    entry: int | None = None

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.variable} is not set: expected {self.expected}"
        if self.entry is not None:
            return f"{self.variable} entry {self.entry} ({self.value!r}): expected {self.expected}"
        return f"{self.variable}={self.value!r}: expected {self.expected}"


class ConfigError(ValueError):
    """The configuration is invalid; :attr:`problems` lists every bad setting."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


# --- kinds of value: how text parses, which values are usable ---------------------------------

#: A check returns ``None`` for a usable value, else what was expected instead.
Check = Callable[[Any], str | None]


def _any_value(value: object) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Kind:
    """What a setting's value is: how its text parses and which parsed values are usable."""

    parse: Callable[[str], Any]
    #: What the text must look like, said when it does not parse ("a number of seconds").
    expected: str
    #: Whether a parsed value (or one given to ``Config(...)``) is usable.
    check: Check = _any_value
    #: For a list, the check of each entry; each bad entry is a problem of its own.
    check_entry: Check | None = None


def _unless(usable: Callable[[Any], bool], expected: str) -> Check:
    """A check that asks for *expected* whenever *usable* says no."""

    def check(value: Any) -> str | None:
        return None if usable(value) else expected

    return check


def _number(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _whole(raw: str) -> int:
    return int(raw, 10)


def number(
    expected: str, *, above: float | None = None, at_least: float | None = None, note: str = ""
) -> Kind:
    """A finite number, bounded below by *above* (excluded) or *at_least* (included)."""
    bound = "" if above is None else f" > {above:g}"
    bound += "" if at_least is None else f" >= {at_least:g}"

    def usable(value: float) -> bool:
        return (
            math.isfinite(value)
            and (above is None or value > above)
            and (at_least is None or value >= at_least)
        )

    return Kind(_number, expected, _unless(usable, f"{expected}{bound}{note}"))


def whole(expected: str, *, at_least: int = 0) -> Kind:
    """A whole number of at least *at_least*."""
    return Kind(
        _whole, expected, _unless(lambda value: value >= at_least, f"{expected} >= {at_least}")
    )


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


#: The ways a decided restart is carried out (``RESTART_VIA``).
RESTART_VIAS = "docker or kubelet"
_RESTART_VIAS = frozenset({"docker", "kubelet"})


def _restart_via(raw: str) -> str:
    lowered = raw.lower()
    if lowered not in _RESTART_VIAS:
        raise ValueError(raw)
    return lowered


def _container_names(names: tuple[str, ...]) -> bool:
    # Only Config(...) can produce these: from_env splits on commas and drops empty names.
    return all(name and "," not in name for name in names)


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in {"http", "https"} and bool(parts.hostname)
    except ValueError:
        return False


def _http_url_or_empty(url: str) -> bool:
    return not url or _http_url(url)


def _url_or_off(raw: str) -> str:
    """A URL, or ``off`` (any case) for none: a label may turn a channel off for one node."""
    return "" if raw.strip().lower() == "off" else raw.strip()


_URL_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_APPRISE_URL = "an apprise URL such as json://host/path or tgram://…"


def _apprise_url(url: str) -> str | None:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return f"{_APPRISE_URL} (this one has no scheme)"
    if not _URL_SCHEME_RE.fullmatch(scheme) or not rest:
        return _APPRISE_URL
    return None


def _docker_url(url: str) -> bool:
    try:
        return urlsplit(url).scheme in {"unix", "tcp", "http", "https", "ssh"}
    except ValueError:
        return False


def _label(label: str) -> bool:
    return bool(label.partition("=")[0])


def _token(token: str) -> bool:
    return len(token) >= 16 and not any(char.isspace() for char in token)


def _masked(text: str) -> str:
    return MASK


TOKEN = "a token of at least 16 characters without spaces (e.g. openssl rand -hex 16)"
SECONDS = "a number of seconds"
BLOCKS = "a whole number of blocks"
DOCKER_URL = "a unix://, tcp://, http(s):// or ssh:// URL"
LABEL = "a label, key=value or key"
NAMES = "container names, comma-separated"
HTTP_URLS = "http(s) URLs, comma-separated"
PORT = "a TCP port (0-65535)"
HTTP_URL_OR_EMPTY = "an http(s) URL, or off"


# --- how values are shown without their secrets -----------------------------------------------


def _show_plain(text: str) -> str:
    return text


def _scheme_only(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


def _as_text(value: object) -> str:
    """A parsed value written the way an operator would have typed it."""
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --- the setting table --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of :class:`Config`: its variable, kind, help, display and defaults."""

    variable: str
    kind: Kind
    help: str
    #: A container's ``azwatch.<setting>`` label may override it for that container.
    per_container: bool = False
    #: How to show one value (or one entry of a list) without its secrets.
    show: Callable[[str], str] = _show_plain
    #: Each bad entry is named by its position, since ``show`` hides the entry itself.
    number_entries: bool = False
    #: What --help and the README say for the default, where the value alone does not tell.
    default_text: str | None = None
    #: The :class:`Config` field and its default; filled in from the field declared with it.
    field_name: str = ""
    default: Any = None

    @property
    def flag(self) -> str:
        """The CLI flag carrying the same setting."""
        return "--" + self.variable.lower().replace("_", "-")

    @property
    def expected(self) -> str:
        """What the variable's text must look like."""
        return self.kind.expected

    @property
    def shown_default(self) -> str:
        """The default as --help and the README give it."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.default == ():
            return "unset"
        return self.shown(self.default)

    def shown(self, value: object) -> str:
        """*value* as text, secrets masked."""
        if isinstance(value, tuple):
            return ",".join(self.show(str(entry)) for entry in value)
        return self.show(_as_text(value))

    def unparsable(self, raw: str) -> ConfigProblem:
        """The problem of text that is not a value of this setting."""
        return ConfigProblem(self.variable, self.show(raw), self.expected)

    def problem(self, value: object, expected: str) -> ConfigProblem:
        """The problem of a parsed *value* that is not what was *expected*."""
        return ConfigProblem(self.variable, self.shown(value), expected)

    def problems(self, value: Any) -> Iterator[ConfigProblem]:
        """Every problem of a parsed *value* on its own; ``None`` is unset and has none."""
        if value is None:
            return
        expected = self.kind.check(value)
        if expected is not None:
            yield self.problem(value, expected)
        if self.kind.check_entry is None:
            return
        for position, entry in enumerate(value, start=1):
            expected = self.kind.check_entry(entry)
            if expected is not None:
                yield ConfigProblem(
                    self.variable,
                    self.show(entry),
                    expected,
                    position if self.number_entries else None,
                )


_SETTING = "azwatch.setting"


def setting(
    default: _T,
    variable: str,
    kind: Kind,
    help: str,
    *,
    per_container: bool = False,
    show: Callable[[str], str] = _show_plain,
    number_entries: bool = False,
    default_text: str | None = None,
    repr: bool = True,
) -> _T:
    """A :class:`Config` field declared together with its setting (see :class:`Setting`)."""
    declared = Setting(
        variable,
        kind,
        help,
        per_container=per_container,
        show=show,
        number_entries=number_entries,
        default_text=default_text,
    )
    return field(default=default, repr=repr, metadata={_SETTING: declared})


def node_url(variable: str, help: str) -> str:
    """A per-container URL of one of the node's own interfaces: off unless set."""
    return setting(
        "",
        variable,
        Kind(_url_or_off, HTTP_URL_OR_EMPTY, _unless(_http_url_or_empty, HTTP_URL_OR_EMPTY)),
        help,
        per_container=True,
        show=redact_url,
        default_text="off",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything azwatch needs to know. Times are in seconds, lags and rises in blocks.

    Construct it directly in library mode (``Config(container_names=("aleph-node",))``) or
    from a mapping with :meth:`from_env`. Invalid values raise :class:`ConfigError`.
    """

    container_names: tuple[str, ...] = setting(
        (),
        "CONTAINER_NAME",
        Kind(_items, NAMES, _unless(_container_names, NAMES)),
        "container(s) to watch, comma-separated",
        default_text="required (unless CONTAINER_LABEL)",
    )
    rpc_urls: tuple[str, ...] = setting(
        (DEFAULT_RPC_URL,),
        "RPC_URL",
        Kind(
            _items,
            HTTP_URLS,
            _unless(bool, "at least one http(s) URL"),
            _unless(_http_url, HTTP_URLS),
        ),
        "reference JSON-RPC endpoint(s), comma-separated",
        show=redact_url,
    )
    check_interval: float = setting(
        60.0,
        "CHECK_INTERVAL",
        number(SECONDS, above=0),
        "seconds between summary lines; longest wait between evaluations",
    )
    block_lag_20: int = setting(
        20,
        "BLOCK_LAG_20",
        whole(BLOCKS),
        "moderate lag threshold (blocks)",
        per_container=True,
    )
    block_lag_100: int = setting(
        100,
        "BLOCK_LAG_100",
        whole(BLOCKS),
        "severe lag threshold (blocks)",
        per_container=True,
    )
    monitor_uid: int = setting(
        1000, "MONITOR_UID", whole("a numeric user id"), "user the image runs as"
    )
    monitor_gid: int = setting(
        996,
        "MONITOR_GID",
        whole("a numeric group id"),
        "group the image runs as (must own the Docker socket)",
    )
    cooldown: float = setting(
        300.0,
        "COOLDOWN",
        number(SECONDS, at_least=0),
        "seconds after a run starts before any restart",
        per_container=True,
    )
    stall_timeout: float = setting(
        180.0,
        "STALL_TIMEOUT",
        number(SECONDS, above=0),
        "seconds without local progress that make a stall",
        per_container=True,
    )
    trend_window: float = setting(
        300.0,
        "TREND_WINDOW",
        number(SECONDS, above=0),
        "falling-behind window and catch-up measuring window (seconds)",
        per_container=True,
    )
    trend_buckets: int = setting(
        5,
        "TREND_BUCKETS",
        whole("a whole number of buckets", at_least=2),
        "buckets the falling-behind window is split into",
        per_container=True,
    )
    falling_behind_min_rise: int = setting(
        5,
        "FALLING_BEHIND_MIN_RISE",
        whole(BLOCKS),
        "blocks the lag must rise over the window",
        per_container=True,
    )
    catch_up_rate: float = setting(
        2.0,
        "CATCH_UP_RATE",
        number("a rate in blocks per second", at_least=0),
        "net blocks/s of shrinking lag that make a node 'catching up' (0: off)",
        per_container=True,
    )
    backoff_factor: float = setting(
        2.0,
        "BACKOFF_FACTOR",
        number("a factor", at_least=1, note=" (1: fixed cooldown)"),
        "cooldown multiplier per restart that did not help",
        per_container=True,
    )
    max_cooldown: float = setting(
        3600.0,
        "MAX_COOLDOWN",
        number(SECONDS),  # and at least COOLDOWN: see _inconsistencies
        "cap of the backed-off cooldown",
        per_container=True,
    )
    recovery_period: float = setting(
        600.0,
        "RECOVERY_PERIOD",
        number(SECONDS, at_least=0),
        "seconds of lag <= BLOCK_LAG_20 that reset the back-off",
        per_container=True,
    )
    rpc_poll_interval: float = setting(
        10.0,
        "RPC_POLL_INTERVAL",
        number(SECONDS, above=0),
        "seconds between head polls",
    )
    rpc_timeout: float = setting(
        5.0, "RPC_TIMEOUT", number(SECONDS, above=0), "per-request deadline (seconds)"
    )
    node_rpc_url: str = node_url(
        "NODE_RPC_URL", "the watched node's own JSON-RPC, a second channel beside its log"
    )
    node_metrics_url: str = node_url(
        "NODE_METRICS_URL",
        "the watched node's Prometheus page, e.g. http://127.0.0.1:9615/metrics",
    )
    finality_timeout: float = setting(
        900.0,
        "FINALITY_TIMEOUT",
        number(SECONDS, above=0),
        "seconds without the node's finalized block advancing that make a finality lag",
        per_container=True,
    )
    finality_min_rise: int = setting(
        20,
        "FINALITY_MIN_RISE",
        whole(BLOCKS, at_least=1),
        "blocks the reference's finalized block must rise meanwhile (else the chain stalled)",
        per_container=True,
    )
    docker_timeout: float = setting(
        15.0,
        "DOCKER_TIMEOUT",
        number(SECONDS, above=0),
        "deadline of each Docker Engine call that answers at once: inspect, list, the opening "
        "of a log or event stream (a restart gets STOP_TIMEOUT plus this)",
    )
    stop_timeout: float = setting(
        60.0,
        "STOP_TIMEOUT",
        number(SECONDS, at_least=0),  # Docker takes whole seconds: the restarter rounds up
        "grace given to the node on restart before Docker kills it",
        per_container=True,
    )
    log_tail: int = setting(
        5000,
        "LOG_TAIL",
        whole("a whole number of lines"),
        "lines of the current run read when attaching",
    )
    log_silence_timeout: float = setting(
        60.0,
        "LOG_SILENCE_TIMEOUT",
        number(SECONDS, above=0),
        "seconds without a line before the log stream is re-attached",
    )
    dry_run: bool = setting(
        False,
        "DRY_RUN",
        Kind(_boolean, "true or false"),
        "decide and log, never restart",
        per_container=True,
    )
    check_chain: bool = setting(
        True,
        "CHECK_CHAIN",
        Kind(_boolean, "true or false"),
        "use only reference endpoints whose genesis is the node's (false: trust them all)",
        per_container=True,
    )
    http_port: int | None = setting(
        None,
        "HTTP_PORT",
        Kind(_whole, PORT, _unless(lambda port: 0 <= port <= 65535, PORT)),
        "serve /metrics, /healthz and /status on this port",
    )
    http_host: str = setting(
        "127.0.0.1",
        "HTTP_HOST",
        Kind(str, "a host or address"),
        "address the HTTP endpoint binds to",
    )
    notify_urls: tuple[str, ...] = setting(
        (),
        "NOTIFY_URLS",
        Kind(_items, "apprise URLs, comma-separated", check_entry=_apprise_url),
        "apprise URLs told of restarts and important transitions",
        show=_scheme_only,
        number_entries=True,
        repr=False,
    )
    container_label: str | None = setting(
        None,
        "CONTAINER_LABEL",
        Kind(str, LABEL, _unless(_label, LABEL)),
        "watch every container with this label",
    )
    log_format: Literal["text", "json"] = setting(
        "text", "LOG_FORMAT", Kind(_log_format, "text or json"), "log line format"
    )
    log_level: str = setting(
        "INFO", "LOG_LEVEL", Kind(_log_level, "DEBUG, INFO, WARNING or ERROR"), "log level"
    )
    docker_host: str | None = setting(
        None,
        "DOCKER_HOST",
        Kind(str, DOCKER_URL, _unless(_docker_url, DOCKER_URL)),
        "Docker Engine address",
        show=redact_url,
        default_text="unix:///var/run/docker.sock",
    )
    restart_via: Literal["docker", "kubelet"] = setting(
        "docker",
        "RESTART_VIA",
        Kind(_restart_via, RESTART_VIAS, _unless(lambda via: via in _RESTART_VIAS, RESTART_VIAS)),
        "who restarts the node: docker (azwatch, through the Engine API) or kubelet (azwatch "
        "serves its verdict at /livez for the node's livenessProbe; no Docker at all)",
    )
    probe_period: float = setting(
        10.0,
        "PROBE_PERIOD",
        number(SECONDS, above=0),
        "kubelet mode: the livenessProbe's periodSeconds; a node unanswered longer than this "
        "that answers again has begun a new run",
    )
    control_token: str | None = setting(
        None,
        "CONTROL_TOKEN",
        Kind(str, TOKEN, _unless(_token, TOKEN)),
        "bearer token for POST /control (pause, resume); required unless HTTP_HOST is loopback",
        show=_masked,
        repr=False,
    )

    def __post_init__(self) -> None:
        problems = _validate({item.field_name: getattr(self, item.field_name) for item in SETTINGS})
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """Build a config from environment-style *environ*; unset or empty means default.

        Raises:
            ConfigError: listing every problem at once: values that do not parse, values that
            do but are unusable, and inconsistencies between values that parsed.
        """
        given: dict[str, Any] = {}
        unparsable: dict[str, ConfigProblem] = {}
        for item in SETTINGS:
            raw = environ.get(item.variable, "").strip()
            if not raw:
                continue
            try:
                given[item.field_name] = item.kind.parse(raw)
            except ValueError:
                unparsable[item.field_name] = item.unparsable(raw)
        values = {item.field_name: item.default for item in SETTINGS} | given
        problems = _validate(values, unparsable)
        if problems:
            raise ConfigError(problems)
        return cls(**given)

    def redacted(self) -> dict[str, object]:
        """The settings as a dict safe to log: URLs masked, notification URLs hidden."""
        shown: dict[str, object] = {}
        for item in SETTINGS:
            value = getattr(self, item.field_name)
            if isinstance(value, tuple):
                value = [item.show(entry) for entry in value]
            elif isinstance(value, str):
                value = item.show(value)
            shown[item.field_name] = value
        return shown

    @property
    def watches_label(self) -> tuple[str, str | None] | None:
        """``CONTAINER_LABEL`` split into key and optional value, or ``None``."""
        if self.container_label is None:
            return None
        key, sep, value = self.container_label.partition("=")
        return (key, value if sep else None)


def _declared_settings() -> tuple[Setting, ...]:
    table: list[Setting] = []
    for item in fields(Config):
        declared: Setting = item.metadata[_SETTING]  # every field is declared by setting()
        table.append(replace(declared, field_name=item.name, default=item.default))
    return tuple(table)


#: Every setting, in the order of :class:`Config`'s fields (and of the problems reported).
SETTINGS: tuple[Setting, ...] = _declared_settings()
_BY_FIELD = {item.field_name: item for item in SETTINGS}
_BY_VARIABLE = {item.variable: item for item in SETTINGS}


def _validate(
    values: Mapping[str, Any], unparsable: Mapping[str, ConfigProblem] | None = None
) -> list[ConfigProblem]:
    """Every problem of *values* (field → value), in table order, then the inconsistencies.

    A setting in *unparsable* is reported as such and not checked further.
    """
    unparsable = unparsable or {}
    problems: list[ConfigProblem] = []
    usable: set[str] = set()
    for item in SETTINGS:
        if item.field_name in unparsable:
            problems.append(unparsable[item.field_name])
            continue
        own = list(item.problems(values[item.field_name]))
        problems.extend(own)
        if not own:
            usable.add(item.field_name)
    problems.extend(_inconsistencies(values, usable))
    return problems


def _inconsistencies(values: Mapping[str, Any], usable: Set[str]) -> Iterator[ConfigProblem]:
    """Problems between settings; each is checked only when every setting in it is usable."""
    if {"block_lag_20", "block_lag_100"} <= usable:
        lag_20, lag_100 = values["block_lag_20"], values["block_lag_100"]
        if lag_20 >= lag_100:
            yield _BY_FIELD["block_lag_20"].problem(
                lag_20, f"a lag below BLOCK_LAG_100 ({lag_100})"
            )
    if {"cooldown", "max_cooldown"} <= usable:
        cooldown, max_cooldown = values["cooldown"], values["max_cooldown"]
        if max_cooldown < cooldown:
            yield _BY_FIELD["max_cooldown"].problem(
                max_cooldown, f"a number of seconds >= COOLDOWN ({cooldown:g})"
            )
    if values["restart_via"] == "kubelet":
        yield from _kubelet_problems(values, usable)
    elif not values["container_names"] and not values["container_label"]:
        yield ConfigProblem(
            "CONTAINER_NAME", None, "the name of the node container (or CONTAINER_LABEL=key=value)"
        )


def _kubelet_problems(values: Mapping[str, Any], usable: Set[str]) -> Iterator[ConfigProblem]:
    """``RESTART_VIA=kubelet``: one node, seen through its own RPC; no Docker to ask."""
    if values["http_port"] is None:
        yield ConfigProblem(
            "HTTP_PORT", None, "a TCP port with RESTART_VIA=kubelet: /livez is served there"
        )
    if "node_rpc_url" in usable and not values["node_rpc_url"]:
        yield ConfigProblem(
            "NODE_RPC_URL",
            None,
            "the node's RPC with RESTART_VIA=kubelet, e.g. http://127.0.0.1:9944 (the pod's "
            "containers share the network)",
        )
    if values["container_label"]:
        yield _BY_FIELD["container_label"].problem(
            values["container_label"],
            "unset with RESTART_VIA=kubelet (there is no Docker to list containers)",
        )
    if "container_names" in usable and len(values["container_names"]) > 1:
        yield _BY_FIELD["container_names"].problem(
            values["container_names"],
            "at most one name with RESTART_VIA=kubelet (the pod's node container)",
        )


# --- per-container overrides ------------------------------------------------------------------

#: Labels ``azwatch.<setting>`` (e.g. ``azwatch.block_lag_100=200``) override the settings
#: declared ``per_container`` for one container; the names are the variables',
#: case-insensitive.
LABEL_PREFIX = "azwatch."


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
        item = _BY_VARIABLE.get(variable)
        if item is None:
            continue  # not a setting: a selector such as azwatch.enable, or the user's own
        if not item.per_container:
            ignored.append(f"label {key}: {variable} cannot be set per container")
            continue
        try:
            values[item.field_name] = item.kind.parse(raw.strip())
        except ValueError:
            ignored.append(f"label {key}={item.show(raw)!r}: expected {item.expected}")
            continue
        shown[variable] = values[item.field_name]
    if not values:
        return config, {}, ignored
    try:
        return replace(config, **values), shown, ignored
    except ConfigError as error:
        ignored.extend(f"labels: {problem}" for problem in error.problems)
        return config, {}, ignored
