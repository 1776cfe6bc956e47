"""The one frozen Settings object, read from environment variables and `.env`.

Nothing else in trio_ticker reads `os.environ`. Invalid values raise `ConfigError` with one
line per bad variable, naming the variable, so a misconfigured server refuses to start clearly.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import redact_tokens
from .history.retention import DEFAULT_RETENTION, parse_retention

SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9.:_/-]{0,31}")
"""Upper-case ASCII letters, digits and `. : _ / -`, at most 32 characters (e.g. `BRK.B`, `BINANCE:BTCUSDT`);
matched with `fullmatch` on text checked to be ASCII before any case mapping."""

ORIGIN_PATTERN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{16,256}$")
"""Tokens travel in a query string, a header and a WebSocket subprotocol: URL- and header-safe only."""

PING_JITTER = 0.2
"""Each WebSocket ping comes TICKER_WS_PING_INTERVAL * (1 +- this) after the previous one (JitteredPingConfig)."""

DEFAULT_WEB_DIR = Path(__file__).resolve().parent.parent / "web"

SOMAXCONN_PATH = Path("/proc/sys/net/core/somaxconn")
MAX_BACKLOG = 1_000_000


def kernel_max_backlog(path: Path = SOMAXCONN_PATH) -> int:
    """The largest listen backlog the kernel grants (Linux cuts `listen(n)` to net.core.somaxconn).

    Without /proc (not Linux), the C library's SOMAXCONN.
    """
    try:
        return max(1, min(int(path.read_text()), MAX_BACKLOG))
    except (OSError, ValueError):
        return socket.SOMAXCONN


SymbolList = Annotated[tuple[str, ...], NoDecode]
OriginList = Annotated[tuple[str, ...], NoDecode]
NameList = Annotated[tuple[str, ...], NoDecode]
TokenList = Annotated[tuple[SecretStr, ...], NoDecode]
GcThresholdSetting = Annotated[tuple[int, int, int] | None, NoDecode]


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names every offending variable."""


def _split_symbols(value: Any) -> Any:
    if isinstance(value, str):  # non-ASCII is kept as written, so the check below refuses it
        return tuple(_ascii_upper(part.strip()) for part in value.split(",") if part.strip())
    return value


def _ascii_upper(text: str) -> str:
    return text.upper() if text.isascii() else text


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TICKER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # The prototypes' variables keep their names.
    demo_mode: bool = Field(True, validation_alias=AliasChoices("TICKER_DEMO_MODE", "DEMO_MODE", "demo_mode"))
    finnhub_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("TICKER_FINNHUB_API_KEY", "FINNHUB_API_KEY", "finnhub_api_key")
    )

    stock_symbols: SymbolList = ("AAPL", "GOOGL", "AMZN", "MSFT")
    crypto_symbols: SymbolList = ("BTCUSDT", "ETHUSDT")
    default_symbol: str = "BTCUSDT"

    demo_interval: float = Field(0.5, gt=0, le=3600)
    demo_speed: float = Field(60.0, gt=0, le=1_000_000)
    demo_seed: int | None = None

    # Live feeds (DEMO_MODE=false); see docs/configuration.md "Live feeds".
    binance_ws_url: str = "wss://stream.binance.com:9443"
    finnhub_ws_url: str = "wss://ws.finnhub.io"
    finnhub_rest_url: str = "https://finnhub.io/api/v1"
    binance_stale_after: float = Field(10.0, gt=0, le=86_400)
    finnhub_stale_after: float = Field(120.0, gt=0, le=86_400)
    binance_max_connection_age: float = Field(23 * 3600.0, gt=0, le=24 * 3600.0)
    finnhub_rest_per_minute: int = Field(60, ge=1, le=100_000)
    finnhub_rest_per_second: int = Field(30, ge=1, le=1_000)
    upstream_connect_timeout: float = Field(10.0, gt=0, le=300)
    reconnect_initial_delay: float = Field(1.0, gt=0, le=3600)
    reconnect_max_delay: float = Field(60.0, gt=0, le=3600)
    reconnect_healthy_after: float = Field(60.0, gt=0, le=86_400)
    unauthorized_retry_delay: float = Field(300.0, gt=0, le=86_400)

    ingest_buffer: int = Field(1024, ge=1, le=1_000_000)
    # Frames queued per client before its ticks collapse to the latest per symbol. Single-frame clients get a
    # small queue (it is their worst-case lag under overload); batching clients drain theirs every flush.
    client_buffer: int = Field(16, ge=1, le=100_000)
    batch_client_buffer: int = Field(256, ge=1, le=100_000)
    slow_client_timeout: float = Field(10.0, gt=0)
    # Recovery (docs/protocol.md "Recovery"): per symbol, the last ticks kept for a reconnecting client, and
    # how old a tick may be and still be replayed. 0 ticks: recovery off (every resubscribe gets the snapshot).
    recovery_ticks: int = Field(1000, ge=0, le=100_000)
    recovery_window: float = Field(120.0, gt=0, le=86_400)
    # A prototype-dialect client that has not subscribed this long after connecting gets the default symbol.
    prototype_default_delay: float = Field(1.0, ge=0, le=60)
    # A batching client gets at most one frame per interval while ticks keep coming (none added when idle).
    batch_flush_interval: float = Field(0.05, ge=0, le=5)
    # While connected clients' writers fill every pacer group, one new connection starts its handshake per interval.
    admission_interval: float = Field(0.01, ge=0, le=1)
    close_timeout: float = Field(2.0, gt=0)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # Connections the kernel completes and queues while the server is busy: a reconnect storm overflows a small
    # queue, and every refused SYN costs its client a retransmit of 1 s, then 3, 7, 15... (docs/benchmarks.md).
    backlog: int = Field(default_factory=kernel_max_backlog, ge=1, le=MAX_BACKLOG)
    # IP:PORT serving only /metrics and the detailed /healthz (docs/configuration.md "Operations endpoints").
    admin_bind: str | None = None
    graceful_timeout: float = Field(5.0, gt=0)
    # A client that stops reading answers no ping: closed ws_read_timeout after its last bytes, or (if its
    # buffers filled first and pinned the send) send_stall_timeout after that; see docs/configuration.md.
    ws_ping_interval: float | None = Field(20.0, gt=0)
    ws_read_timeout: float | None = Field(40.0, gt=0)
    send_stall_timeout: float = Field(20.0, gt=0, le=3600)
    send_buffer: int = Field(131_072, ge=0, le=64 * 1024 * 1024)  # bytes; 0 = the kernel's autotuning

    # Limits and access control; see docs/configuration.md "Limits and access control".
    ws_max_message_size: int = Field(4096, ge=64, le=16 * 1024 * 1024)
    rate_limit_burst: int = Field(20, ge=1, le=100_000)
    rate_limit_per_second: float = Field(5.0, gt=0, le=100_000)
    rate_limit_max_rejections: int = Field(20, ge=1, le=100_000)
    max_subscriptions_per_client: int = Field(100, ge=1, le=100_000)
    max_symbols_per_message: int = Field(50, ge=1, le=10_000)
    max_connections: int = Field(10_000, ge=1, le=1_000_000)
    max_query_length: int = Field(1024, ge=64, le=65_536)
    # On-demand symbols; see docs/configuration.md "Symbols on demand".
    symbol_linger: float = Field(60.0, ge=0, le=86_400)
    max_active_symbols: int = Field(1000, ge=1, le=100_000)
    finnhub_max_symbols: int = Field(50, ge=1, le=10_000)
    allowed_origins: OriginList = ()
    auth_tokens: TokenList = ()

    # Scale-out through Redis (unset: one process, no Redis); see docs/configuration.md "Scale-out (Redis)".
    redis_url: SecretStr | None = None
    redis_prefix: str = Field("trio_ticker", pattern=r"^[A-Za-z0-9:_.-]{1,64}$")
    role: Literal["both", "fanout"] = "both"
    redis_lease: float = Field(5.0, ge=0.2, le=300)
    redis_command_timeout: float = Field(2.0, gt=0, le=60)
    redis_stream_maxlen: int = Field(10_000, ge=100, le=10_000_000)
    redis_reconnect_initial_delay: float = Field(0.2, gt=0, le=60)
    redis_reconnect_max_delay: float = Field(5.0, gt=0, le=600)

    # History and candles; see docs/configuration.md "History and candles".
    history: Literal["auto", "sqlite", "redis", "off"] = "auto"
    data_dir: Path = Path("data")
    history_flush_interval: float = Field(1.0, gt=0, le=60)
    candle_retention: str = DEFAULT_RETENTION
    history_max_candles: int = Field(100_000, ge=10, le=10_000_000)
    history_pending_limit: int = Field(200_000, ge=100, le=10_000_000)
    history_retry_max_delay: float = Field(30.0, ge=1, le=3600)
    candle_close_delay: float = Field(0.5, ge=0, le=60)
    candles_max_limit: int = Field(1500, ge=1, le=100_000)
    binance_rest_url: str = "https://api.binance.com"
    backfill: bool = True
    backfill_candles: int = Field(1000, ge=0, le=100_000)
    backfill_gap_after: float = Field(30.0, gt=0, le=86_400)
    binance_rest_weight_per_minute: int = Field(1200, ge=10, le=6000)
    demo_history_hours: float = Field(24.0, ge=0, le=24 * 31)

    # The symbol catalogue and search; see docs/configuration.md "Symbol catalogue".
    catalogue_fetch: bool = True
    catalogue_refresh: float = Field(3600.0, ge=1, le=7 * 86_400)
    catalogue_fetch_timeout: float = Field(60.0, gt=0, le=3600)
    catalogue_max_listings: int = Field(50_000, ge=1, le=1_000_000)
    catalogue_max_bytes: int = Field(64 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    finnhub_exchange: str = Field("US", pattern=r"^[A-Z0-9]{1,10}$")
    finnhub_symbol_types: NameList = ("Common Stock", "ETP", "ADR", "REIT")
    stock_catalogue: SymbolList = ()
    search_default_limit: int = Field(20, ge=1, le=1000)
    search_max_limit: int = Field(50, ge=1, le=1000)

    # Cyclic GC thresholds (young,middle,old) set at startup; "" leaves the collector alone (docs/architecture.md).
    gc_thresholds: GcThresholdSetting = (10_000, 1000, 100)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    web_dir: Path = DEFAULT_WEB_DIR

    @field_validator("stock_symbols", "crypto_symbols", "stock_catalogue", mode="before")
    @classmethod
    def _parse_symbol_list(cls, value: Any) -> Any:
        return _split_symbols(value)

    @field_validator("finnhub_symbol_types")
    @classmethod
    def _check_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not name.isascii() or not name.isprintable() or len(name) > 40 for name in value):
            raise ValueError("give one or more Finnhub symbol types (printable ASCII, e.g. Common Stock,ETP)")
        return value

    @field_validator("stock_symbols", "crypto_symbols", "stock_catalogue")
    @classmethod
    def _check_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [symbol for symbol in value if not SYMBOL_PATTERN.fullmatch(symbol)]
        if bad:
            raise ValueError(f"invalid symbol(s) {', '.join(map(repr, bad))}: use A-Z, 0-9 and . : _ / -")
        if len(set(value)) != len(value):
            raise ValueError("a symbol is listed twice")
        return value

    @field_validator("allowed_origins", "auth_tokens", "finnhub_symbol_types", mode="before")
    @classmethod
    def _parse_comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [origin for origin in value if not ORIGIN_PATTERN.match(origin)]
        if bad:
            raise ValueError(f"invalid origin(s) {', '.join(map(repr, bad))}: use scheme://host[:port], no path")
        return tuple(origin.lower() for origin in value)

    @field_validator("auth_tokens")
    @classmethod
    def _check_tokens(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(not TOKEN_PATTERN.match(token.get_secret_value()) for token in value):
            raise ValueError("each token must be 16-256 characters of A-Z, a-z, 0-9 and - . _ ~")
        return value

    @field_validator("binance_ws_url", "finnhub_ws_url", "finnhub_rest_url", "binance_rest_url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        rest = info.field_name in ("finnhub_rest_url", "binance_rest_url")
        schemes = ("https://", "http://") if rest else ("wss://", "ws://")
        if not value.startswith(schemes) or len(value) <= len(schemes[1]) or "token=" in value.lower():
            raise ValueError(f"must be a {schemes[0]} (or {schemes[1]}) URL without a token")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("candle_retention")
    @classmethod
    def _check_retention(cls, value: str) -> str:
        parse_retention(value)  # raises ValueError naming the bad part
        return value

    @field_validator("history", mode="before")
    @classmethod
    def _lower_history(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("admin_bind")
    @classmethod
    def _check_admin_bind(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        bind = value.strip()
        host, port = _host_and_port(bind)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        bracketed = bind.startswith("[")
        if address is None or bracketed != (address.version == 6) or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be IP:PORT, e.g. 127.0.0.1:9100 or [::1]:9100 (an address, not a host name)")
        return f"[{address}]:{int(port)}" if address.version == 6 else f"{address}:{int(port)}"

    @field_validator("gc_thresholds", mode="before")
    @classmethod
    def _parse_gc_thresholds(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        parts = value.split(",")
        if len(parts) != 3 or not all(part.strip().isdigit() for part in parts):
            raise ValueError("must be three comma-separated whole numbers young,middle,old (e.g. 700,1000,100)")
        return tuple(int(part) for part in parts)

    @field_validator("gc_thresholds")
    @classmethod
    def _check_gc_thresholds(cls, value: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if value is not None and not all(1 <= threshold <= 10_000_000 for threshold in value):
            raise ValueError("each threshold must be between 1 and 10000000 (empty: leave the collector alone)")
        return value

    @field_validator("default_symbol", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return _ascii_upper(value.strip()) if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if not self.symbols:
            raise ValueError("no symbols configured: set TICKER_STOCK_SYMBOLS and/or TICKER_CRYPTO_SYMBOLS")
        overlap = set(self.stock_symbols) & set(self.crypto_symbols)
        if overlap:
            raise ValueError(f"symbol(s) {sorted(overlap)} are both stock and crypto symbols")
        if self.reconnect_max_delay < self.reconnect_initial_delay:
            raise ValueError("TICKER_RECONNECT_MAX_DELAY must be at least TICKER_RECONNECT_INITIAL_DELAY")
        if not self.demo_mode and self.stock_symbols and not self.has_finnhub_key:
            raise ValueError(
                "FINNHUB_API_KEY is not set: live mode (DEMO_MODE=false) needs it for the stock symbols "
                f"{', '.join(self.stock_symbols)}. Set FINNHUB_API_KEY (free key at finnhub.io), "
                "or set TICKER_STOCK_SYMBOLS= to serve crypto only, or DEMO_MODE=true"
            )
        if self.history == "redis" and self.redis_url is None:
            raise ValueError("TICKER_HISTORY=redis needs TICKER_REDIS_URL (or use auto, sqlite or off)")
        if self.role == "fanout" and self.redis_url is None:
            raise ValueError("TICKER_ROLE=fanout needs TICKER_REDIS_URL: a fan-out worker reads its ticks from Redis")
        if self.redis_reconnect_max_delay < self.redis_reconnect_initial_delay:
            raise ValueError("TICKER_REDIS_RECONNECT_MAX_DELAY must be at least TICKER_REDIS_RECONNECT_INITIAL_DELAY")
        if self.ws_read_timeout is not None and (
            self.ws_ping_interval is None or self.ws_read_timeout <= self.ws_ping_interval * (1 + PING_JITTER)
        ):
            raise ValueError(
                "TICKER_WS_READ_TIMEOUT needs TICKER_WS_PING_INTERVAL set and shorter: a client that only "
                f"listens sends nothing but its pongs, which come up to {1 + PING_JITTER:g} ping intervals apart "
                f"(pings are spread by ±{PING_JITTER:.0%}), so it would be closed"
            )
        if self.admin_bind == f"{self.host}:{self.port}":
            raise ValueError("TICKER_ADMIN_BIND must differ from TICKER_HOST:TICKER_PORT, the public bind")
        if self.search_default_limit > self.search_max_limit:
            raise ValueError("TICKER_SEARCH_DEFAULT_LIMIT must be at most TICKER_SEARCH_MAX_LIMIT")
        if len(self.symbols) > self.max_active_symbols:
            raise ValueError(
                f"TICKER_MAX_ACTIVE_SYMBOLS ({self.max_active_symbols}) is below the number of configured "
                f"symbols ({len(self.symbols)})"
            )
        if self.default_symbol not in self.symbols:
            raise ValueError(f"TICKER_DEFAULT_SYMBOL {self.default_symbol!r} is not among the configured symbols")
        return self

    @property
    def has_finnhub_key(self) -> bool:
        return self.finnhub_api_key is not None and bool(self.finnhub_api_key.get_secret_value().strip())

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.stock_symbols + self.crypto_symbols

    @property
    def history_store(self) -> Literal["sqlite", "redis", "off"]:
        """Where candles are kept: `auto` means Redis when TICKER_REDIS_URL is set, else SQLite."""
        if self.history == "auto":
            return "redis" if self.redis_url is not None else "sqlite"
        return self.history

    @property
    def admin_address(self) -> tuple[str, int] | None:
        """TICKER_ADMIN_BIND as the (host, port) an ASGI scope's `server` holds for requests made to it."""
        if self.admin_bind is None:
            return None
        host, port = _host_and_port(self.admin_bind)
        return host, int(port)


def _host_and_port(bind: str) -> tuple[str, str]:
    """ "127.0.0.1:9100" -> ("127.0.0.1", "9100"); "[::1]:9100" -> ("::1", "9100")."""
    host, _, port = bind.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), port


def load_settings(**overrides: Any) -> Settings:
    """Read the settings (overrides win over env and `.env`), or raise one readable ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"])
        variable = _variable_name(field)
        given = problem.get("input")
        secret = variable.endswith("API_KEY") or "AUTH_TOKENS" in variable or "REDIS_URL" in variable
        shown = "" if isinstance(given, dict) or secret else f" (got {given!r})"
        shown = redact_tokens(shown)  # an API key pasted into a URL is not echoed
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {variable}: {message}{shown}" if field else f"  {message}")
    return "\n".join(lines)


def _variable_name(field: str) -> str:
    if not field:
        return ""
    if field in ("demo_mode", "DEMO_MODE", "TICKER_DEMO_MODE"):
        return "DEMO_MODE"
    if field.lower().endswith("finnhub_api_key"):
        return "FINNHUB_API_KEY"
    return field.upper() if field.upper().startswith("TICKER_") else f"TICKER_{field.upper()}"
