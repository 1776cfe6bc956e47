"""The Quart-Trio app: REST snapshot routes, /metrics, the web client's files, and `/ws` in front.

`create_app(settings)` builds everything (no globals but the module-level `app` Hypercorn
imports). The lifespan starts the root service once, in quart-trio's nursery, before serving.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from quart import Response, jsonify, request, send_file, websocket
from quart.json.provider import DefaultJSONProvider
from quart.typing import ResponseReturnValue
from quart_cors import cors
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, NotFound

from . import hypercorn_guard, hypercorn_idle, hypercorn_ping, protocol
from .access import AccessPolicy, bearer_token, several_origins
from .connections import ConnectionRegistry
from .gc_tuning import tune_garbage_collector
from .history.frames import candles_body
from .history.query import QueryError, parse_candle_query
from .history.store import CandleStoreUnavailable
from .logs import configure_logging
from .metrics import TickerMetrics
from .protocol import ErrorCode, ProtocolError
from .service import TickerService
from .settings import ConfigError, Settings, load_settings
from .web_files import WebFiles
from .websocket import WebSocketEndpoint

NO_DATA_RETRY_AFTER_SECONDS = 1
HISTORY_RETRY_AFTER_SECONDS = 5
TOKEN_PROTECTED_ENDPOINTS = frozenset({"price", "prices", "symbols", "metrics_text", "candles"})
"""With TICKER_AUTH_TOKENS set these need `Authorization: Bearer`; /healthz and the web files stay open."""
OPERATIONS_ENDPOINTS = frozenset({"healthz", "metrics_text"})
"""With TICKER_ADMIN_BIND set, all the admin bind serves (no token asked); the public bind has no /metrics."""


def create_app(
    settings: Settings | None = None,
    service: TickerService | None = None,
    connections: ConnectionRegistry | None = None,
) -> QuartTrio:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    # Here, so that the bare `hypercorn trio_ticker.app:app` command gets them too.
    hypercorn_guard.install()
    hypercorn_ping.install()
    hypercorn_idle.install()
    service = service or TickerService(settings)
    connections = connections or ConnectionRegistry(settings.max_connections)
    app = QuartTrio(__name__, static_folder=None)
    app.json = StrictJSONProvider(app)
    access = AccessPolicy(settings.allowed_origins, settings.auth_tokens, settings.admin_address)
    endpoint = WebSocketEndpoint(app.asgi_app, service, access, connections)
    app.asgi_app = endpoint  # type: ignore[method-assign]
    metrics = TickerMetrics(service, endpoint.counters, connections)
    hub = service.hub
    web_files = WebFiles(settings.web_dir)

    # Registered before quart_cors's own check, which answers 400 to a WebSocket without an Origin.
    @app.before_websocket
    async def check_websocket() -> None:
        if access.on_admin_bind(websocket.scope):  # /ws included: WebSocketEndpoint leaves those to Quart
            raise NotFound()

    # No list: any page may read the public REST data (`*`); a list: only those Origins.
    cors(
        app,
        allow_origin=list(settings.allowed_origins) or "*",
        send_origin_wildcard=not settings.allowed_origins,
        allow_headers=["Authorization"],
        allow_methods=["GET"],
        max_age=600,
    )

    @app.before_request
    async def check_request() -> ResponseReturnValue | None:
        on_admin_bind = access.on_admin_bind(request.scope)
        if access.has_admin_bind and (
            request.endpoint not in OPERATIONS_ENDPOINTS if on_admin_bind else request.endpoint == "metrics_text"
        ):
            raise NotFound()
        if len(request.query_string) > settings.max_query_length:
            return error_response(
                "query_too_long", f"the query string is longer than {settings.max_query_length} bytes", 414
            )
        if several_origins(request.headers.getlist("Origin")):
            return error_response("origin_not_allowed", "more than one Origin header", 403)
        if (
            access.requires_token
            and not on_admin_bind
            and request.method != "OPTIONS"
            and request.endpoint in TOKEN_PROTECTED_ENDPOINTS
            and not access.token_valid(bearer_token(request.headers.get("Authorization")))
        ):
            response, status = error_response("unauthorized", "a valid bearer token is required", 401)
            return response, status, {"WWW-Authenticate": "Bearer"}
        return None

    @app.before_serving
    async def start_service() -> None:
        tune_garbage_collector(settings.gc_thresholds)
        await app.nursery.start(service.run)

    @app.after_serving
    async def stop_service() -> None:
        service.stop()

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> tuple[Response, int]:
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(code, error.description or error.name, error.code or 500)

    @app.get("/price")
    async def price() -> ResponseReturnValue:
        symbol = request.args.get("symbol", settings.default_symbol)
        try:
            symbol = protocol.normalize_symbol(symbol)
        except ProtocolError as error:
            return error_response(error.code, error.message, 400, symbol=symbol[:40])
        if hub.unknown((symbol,)):
            return error_response(ErrorCode.UNKNOWN_SYMBOL, f"unknown symbol {symbol}", 404, symbol=symbol)
        tick = hub.latest(symbol)
        if tick is None:
            response, status = error_response(
                "no_data", f"no price for {symbol} yet; retry shortly", 503, symbol=symbol
            )
            return response, status, {"Retry-After": str(NO_DATA_RETRY_AFTER_SECONDS)}
        return jsonify(protocol.snapshot_fields(tick))

    @app.get("/prices")
    async def prices() -> Response:
        latest = hub.all_latest()
        return jsonify(
            {"prices": {symbol: protocol.snapshot_fields(latest[symbol]) for symbol in hub.symbols if symbol in latest}}
        )

    @app.get("/symbols")
    async def symbols() -> Response:
        return jsonify({"symbols": list(hub.symbols), "default": settings.default_symbol})

    @app.get("/candles")
    async def candles() -> ResponseReturnValue:
        history = service.history
        if history is None:
            return error_response("candles_unavailable", "this server keeps no candles (TICKER_HISTORY=off)", 404)
        try:
            query = parse_candle_query(
                request.args,
                symbols=hub.symbols,
                default_symbol=settings.default_symbol,
                max_limit=settings.candles_max_limit,
            )
            found = await history.candles(query)
        except QueryError as error:
            return error_response(error.code, error.message, error.status, **error.details)
        except CandleStoreUnavailable:
            response, status = error_response(
                "history_unavailable", "the candle store cannot be read right now; retry shortly", 503
            )
            return response, status, {"Retry-After": str(HISTORY_RETRY_AFTER_SECONDS)}
        body = orjson.dumps(candles_body(query.symbol, query.interval, found))
        return Response(body, content_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        if access.has_admin_bind and not access.on_admin_bind(request.scope):
            return jsonify({"status": "ok"})  # the details (upstream errors included) are the admin bind's
        statistics = hub.statistics()
        last_messages = {
            source.name: source.last_message_ts for source in service.sources if hasattr(source, "last_message_ts")
        }
        return jsonify(
            {
                "status": "ok",
                "mode": "demo" if settings.demo_mode else "live",
                "clients": statistics.clients,
                "connections": service.open_connections,
                "sources": {
                    name: {
                        "state": status.state.value,
                        "since": status.ts,
                        "reconnects": status.reconnects,
                        "detail": status.detail,
                        "last_message_ts": last_messages.get(name, status.last_message_ts),
                    }
                    for name, status in hub.source_statuses().items()
                },
                "statistics": statistics_fields(statistics),
                **({"redis": service.scale_out.health()} if service.scale_out is not None else {}),
                **({"history": service.history.health()} if service.history is not None else {}),
            }
        )

    @app.get("/metrics")
    async def metrics_text() -> ResponseReturnValue:
        return metrics.render(), 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}

    @app.get("/")
    async def index() -> Response:
        return await web_file("index.html")

    @app.get("/<path:filename>")
    async def web_file(filename: str) -> Response:
        path = web_files.find(filename)
        if path is None:
            raise NotFound()
        return await send_file(path)

    return app


class StrictJSONProvider(DefaultJSONProvider):
    """Quart's JSON, refusing NaN and the infinities that Python's `json` would write as `NaN` / `Infinity`
    (not JSON): such a value is a bug, answered 500 rather than sent."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


def error_response(code: str, message: str, status: int, **details: Any) -> tuple[Response, int]:
    return jsonify({"type": "error", "code": str(code), "message": message, **details}), status


def statistics_fields(statistics: Any) -> dict[str, int]:
    return {name: getattr(statistics, name) for name in statistics.__dataclass_fields__}


def _create_default_app() -> QuartTrio:
    try:
        return create_app()
    except ConfigError as error:
        # An exit status (not a message) so Hypercorn's worker process reports the failure.
        sys.stderr.write(f"trio_ticker: {error}\n")
        raise SystemExit(2) from None


app = _create_default_app()
