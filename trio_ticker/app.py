"""The composition root: `assemble(settings)` builds every part, wires them, and serves them as one app.

Delivery (hub, pacer, reaper), the sources and the ingest route that feeds the hub (local, or Redis
with TICKER_REDIS_URL), the `/ws` endpoint in front of the Quart-Trio app with the REST snapshot
routes, /metrics and the web client's files. No globals but the module-level `app` Hypercorn
imports. The lifespan starts the root service once, in quart-trio's nursery, before serving.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from quart import Response, jsonify, request, send_file, websocket
from quart.json.provider import DefaultJSONProvider
from quart.typing import ResponseReturnValue
from quart_cors import cors
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, NotFound

from .catalogue.build import build_catalogue
from .catalogue.catalogue import Catalogue
from .catalogue.directory import SymbolDirectory
from .delivery.demand import SymbolDemand
from .delivery.hub import Hub
from .delivery.pacing import FlushPacer
from .delivery.recovery import RecoveryLimits
from .delivery.slow_clients import SlowClientReaper
from .edge import hypercorn_guard, hypercorn_idle, hypercorn_ping, hypercorn_send
from .edge.access import AccessPolicy, bearer_token, several_origins
from .edge.connections import ConnectionRegistry
from .edge.limits import LimitCounters
from .edge.metrics import ScrapeTimeCollector, TickerMetrics
from .edge.web_files import WebFiles
from .edge.websocket_endpoint import WebSocketEndpoint
from .history.build import build_history, build_journal, build_numbering, store_opener
from .history.frames import STORE_UNAVAILABLE, candles_body
from .history.metrics import HistoryCollector
from .history.query import QueryError, parse_candle_query, parse_count
from .ingest.local import LocalIngest
from .model import Tick
from .process.gc_tuning import tune_garbage_collector
from .process.logs import configure_logging
from .process.service import IngestRoute, TickerService
from .protocol.commands import normalize_query, normalize_symbol
from .protocol.errors import ErrorCode, ProtocolError
from .protocol.frames import listing_fields, snapshot_fields
from .settings import ConfigError, Settings, load_settings
from .sources.build import build_supervised_sources
from .sources.supervise import Supervisor

NO_DATA_RETRY_AFTER_SECONDS = 1
TOKEN_PROTECTED_ENDPOINTS = frozenset({"price", "prices", "symbols", "metrics_text", "candles"})
"""With TICKER_AUTH_TOKENS set these need `Authorization: Bearer`; /healthz and the web files stay open."""
OPERATIONS_ENDPOINTS = frozenset({"healthz", "metrics_text"})
"""With TICKER_ADMIN_BIND set, all the admin bind serves (no token asked); the public bind has no /metrics."""


@dataclass(frozen=True, slots=True)
class Assembly:
    """What the composition root built: `python -m trio_ticker` and the tests drive these parts."""

    settings: Settings
    hub: Hub
    sources: tuple[Supervisor, ...]
    ingest: IngestRoute
    service: TickerService
    connections: ConnectionRegistry
    endpoint: WebSocketEndpoint
    app: QuartTrio
    catalogue: Catalogue  # the SymbolDirectory of every listed symbol (and their search)


def create_app(settings: Settings | None = None) -> QuartTrio:
    return assemble(settings or load_settings()).app


def build_ingest(
    settings: Settings,
    sources: tuple[Supervisor, ...],
    latest_ticks: Callable[[], dict[str, Tick]],
    *,
    on_epoch: Callable[[str], None],
) -> IngestRoute:
    """The sources in this process, or (TICKER_REDIS_URL) the scale-out node that follows Redis and may lead."""
    if settings.redis_url is None:
        return LocalIngest(sources)
    from .ingest.scaleout.node import ScaleOutNode  # only scale-out deployments import coredis

    return ScaleOutNode(settings, sources, latest_ticks=latest_ticks, on_epoch=on_epoch)


def assemble(
    settings: Settings,
    *,
    sources: Sequence[Supervisor] | None = None,
    directory: SymbolDirectory | None = None,
) -> Assembly:
    """Build and wire every part; `sources` replaces the ones Settings name (a test that publishes itself),
    `directory` the symbols clients may subscribe to (default: every symbol the catalogue lists)."""
    configure_logging(settings.log_level)
    # Here, so that the bare `hypercorn trio_ticker.app:app` command gets them too.
    hypercorn_guard.install()
    hypercorn_ping.install()
    hypercorn_idle.install()
    hypercorn_send.install()
    metrics = TickerMetrics()
    pacer = FlushPacer(settings.batch_flush_interval, admission_floor=settings.admission_interval)
    reaper = SlowClientReaper(settings.slow_client_timeout)
    hub: Hub  # built after the sources, the ingest route and the demand owner, which call back into it
    numbering = build_numbering(settings)
    # The ticks published before a restart, read back into the hub's recovery history at start (SQLite only).
    journal = build_journal(settings, numbering, on_past=lambda past: hub.ingest(past))
    # One candle writer per deployment: asked at each write, so it can follow the ingest route built below.
    history = build_history(settings, writing=lambda: ingest.leads(), journal=journal)  # None: TICKER_HISTORY=off
    # The fetched catalogues are kept in the history's store, so a restart serves the last ones at once.
    catalogue = build_catalogue(
        settings, open_store=store_opener(settings) if settings.history_store != "off" else None
    )
    # A demo walk resumes from the prices the hub last published (a restart, or a new ingest leader).
    if sources is None:
        sources = build_supervised_sources(settings, latest_price=lambda symbol: hub.latest_price(symbol))
    supervised = tuple(sources)
    ingest = build_ingest(settings, supervised, lambda: hub.all_latest(), on_epoch=lambda epoch: hub.set_epoch(epoch))
    # Subscriptions drive upstream: the demand owner routes each listed symbol to the source its listing names.
    demand = SymbolDemand(
        directory or catalogue,
        always_on=settings.symbols,
        linger=settings.symbol_linger,
        max_active=settings.max_active_symbols,
        streams=ingest.symbol_streams(),
        on_retired=lambda symbol: hub.retire(symbol),
    )
    hub = Hub(
        settings.symbols,
        client_buffer=settings.client_buffer,
        reaper=reaper,
        on_tick_sampled=metrics.observe_tick_age,
        candles=history.live if history is not None else None,
        epoch=secrets.token_hex(8),
        recovery=RecoveryLimits(settings.recovery_ticks, settings.recovery_window),
        first_seq=numbering.first_seq if numbering is not None else None,
        may_number=numbering.may_number if numbering is not None else None,
        demand=demand,
        on_published=journal.record if journal is not None else None,
    )
    service = TickerService(
        hub,
        ingest,
        pacer=pacer,
        reaper=reaper,
        ingest_buffer=settings.ingest_buffer,
        history=history,
        catalogue=catalogue,
        numbering=numbering,
        demand=demand,
    )
    app = QuartTrio(__name__, static_folder=None)
    app.json = StrictJSONProvider(app)
    access = AccessPolicy(settings.allowed_origins, settings.auth_tokens, settings.admin_address)
    counters = LimitCounters()
    connections = ConnectionRegistry(settings.max_connections, wait_admission=pacer.wait_admission)
    endpoint = WebSocketEndpoint(
        app.asgi_app, hub, pacer, settings, access, counters, connections, search=catalogue.search
    )
    app.asgi_app = endpoint  # type: ignore[method-assign]
    metrics.collect_at_scrape(
        ScrapeTimeCollector(
            hub=hub,
            sources=supervised,
            connections=lambda: endpoint.open_connections,
            counters=counters,
            sockets=connections,
        )
    )
    if history is not None:
        metrics.collect_at_scrape(HistoryCollector(history))
    metrics.collect_at_scrape(catalogue)
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
            symbol = normalize_symbol(symbol)
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
        return jsonify(snapshot_fields(tick))

    @app.get("/prices")
    async def prices() -> Response:
        latest = hub.all_latest()
        return jsonify(
            {"prices": {symbol: snapshot_fields(latest[symbol]) for symbol in hub.symbols if symbol in latest}}
        )

    @app.get("/symbols")
    async def symbols() -> ResponseReturnValue:
        """Without `q`: the configured (always-on) symbols. With `q`: a catalogue search, `limit` results at most."""
        raw_query = request.args.get("q", "").strip() or None  # `?q=` (an emptied search box): the list
        try:
            limit = parse_count(
                request.args, "limit", default=settings.search_default_limit, high=settings.search_max_limit
            )
            query = None if raw_query is None else normalize_query(raw_query)
        except QueryError as error:
            return error_response(error.code, error.message, error.status, **error.details)
        except ProtocolError as error:
            return error_response(error.code, error.message, 400, **error.details)
        found = catalogue.configured() if query is None else catalogue.search(query, limit)
        return jsonify({"symbols": [listing_fields(listing) for listing in found], "default": settings.default_symbol})

    @app.get("/candles")
    async def candles() -> ResponseReturnValue:
        if history is None:
            return error_response("candles_unavailable", "this server keeps no candles (TICKER_HISTORY=off)", 404)
        try:
            query = parse_candle_query(
                request.args,
                is_listed=lambda symbol: not hub.unknown((symbol,)),  # on-demand symbols have candles too
                default_symbol=settings.default_symbol,
                max_limit=settings.candles_max_limit,
            )
            found = await history.candles(query)
        except QueryError as error:
            return error_response(error.code, error.message, error.status, **error.details)
        available = found.store_available
        body = orjson.dumps(candles_body(query.symbol, query.interval, found.candles, store_available=available))
        headers = {} if available else {"X-Candle-Store": STORE_UNAVAILABLE}
        return Response(body, content_type="application/json", headers=headers)

    @app.get("/healthz")
    async def healthz() -> Response:
        if access.has_admin_bind and not access.on_admin_bind(request.scope):
            return jsonify({"status": "ok"})  # the details (upstream errors included) are the admin bind's
        statistics = hub.statistics()
        last_messages = {source.name: source.last_message_ts for source in supervised}
        return jsonify(
            {
                "status": "ok",
                "mode": "demo" if settings.demo_mode else "live",
                "clients": statistics.clients,
                "connections": endpoint.open_connections,
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
                "catalogue": catalogue.health(),
                "symbols": statistics_fields(demand.statistics()),
                **ingest.health(),
                **({"history": history.health()} if history is not None else {}),
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

    return Assembly(settings, hub, supervised, ingest, service, connections, endpoint, app, catalogue)


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
