"""The OpenAPI 3.1 document of the web service, served at /api/openapi.json.

Generated, never written by hand. Each module of handlers declares its routes as `Route`s
(method, path, summary, body model, replies by status, parameters, staff or not); the app
routes exactly those (`Route.add_to`), and `openapi_document` turns them and the pydantic
models of bot/web/schemas.py into the document, per app, from its settings (the message
length limit is configured).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Literal, Mapping

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from bot.settings import Settings
from bot.web.schemas import ErrorBody

REF = "#/components/schemas/{model}"
ERRORS = {
    400: "Malformed request (not JSON, not UTF-8, empty body)",
    401: "Identity or staff token missing, forged or expired",
    404: "Not found",
    408: "The request body did not arrive in time",
    409: "Conflict with the resource's state",
    413: "Body or message too large",
    415: "The body is not sent as application/json",
    422: "A field or parameter has an invalid value",
    429: "Rate limited; see Retry-After",
    503: "The assistant or the database is not reachable",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A request model, or for a body whose limits are configured, the function giving the app's model.
BodyModel = type[BaseModel] | Callable[[Settings], type[BaseModel]]


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter; `type` is anything pydantic can describe."""

    name: str
    where: Literal["path", "query", "header"]
    type: Any
    description: str = ""
    required: bool = False  # path parameters always are
    route_pattern: str | None = None  # the router's pattern of a path parameter, e.g. \d+

    def document(self) -> dict[str, Any]:
        """The parameter object of the document."""
        schema = TypeAdapter(self.type).json_schema(ref_template=REF)
        schema.pop("title", None)
        description = self.description or schema.pop("description", "")
        out: dict[str, Any] = {"name": self.name, "in": self.where, "required": self.required or self.where == "path"}
        return out | ({"description": description} if description else {}) | {"schema": schema}


@dataclass(frozen=True)
class Reply:
    """A documented response: a JSON model, or another media type (CSV, calendar, events)."""

    description: str
    model: type[BaseModel] | None = None
    media_type: str = "application/json"


@dataclass(frozen=True)
class Route:
    """One method and path of the API: what is routed and what is documented are this."""

    method: str
    path: str  # as documented: `{name}` for a path parameter
    handler: Handler
    summary: str
    body: BodyModel | None = None
    # Status → model (OK / Created), Reply, or for an error status the sentence describing it.
    replies: Mapping[int, type[BaseModel] | Reply | str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()  # described by ERRORS
    params: tuple[Param, ...] = ()
    staff: bool = False  # the staff bearer token is required (401 without it)

    def add_to(self, app: web.Application) -> None:
        """Route the handler, with the path parameters' patterns (`{chat_id:\\d+}`)."""
        path = self.path
        for param in self.params:
            if param.where == "path" and param.route_pattern:
                path = path.replace("{" + param.name + "}", "{" + param.name + ":" + param.route_pattern + "}")
        app.router.add_route(self.method, path, self.handler)

    def body_model(self, settings: Settings) -> type[BaseModel] | None:
        """The request body's model in an app with `settings`."""
        if self.body is None or (isinstance(self.body, type) and issubclass(self.body, BaseModel)):
            return self.body
        return self.body(settings)

    def responses(self) -> dict[int, Reply]:
        """Every documented reply by status: the declared ones, the errors, 401 for staff routes."""
        out: dict[int, Reply] = {}
        for status, reply in self.replies.items():
            if isinstance(reply, str):
                reply = Reply(reply, ErrorBody)
            elif not isinstance(reply, Reply):
                reply = Reply("Created" if status == 201 else "OK", reply)
            out[status] = reply
        for status in (*self.errors, *((401,) if self.staff else ())):
            out.setdefault(status, Reply(ERRORS[status], ErrorBody))
        return dict(sorted(out.items()))


class Components:
    """The models' schemas, collected under components.schemas as they are referred to."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        """A reference to `model`, whose schema (and those it uses) are collected."""
        schema = model.model_json_schema(ref_template=REF)
        for name, sub in [*schema.pop("$defs", {}).items(), (model.__name__, schema)]:
            if self.schemas.setdefault(name, sub) != sub:
                raise ValueError(f"two different models are called {name}")
        return {"$ref": REF.format(model=model.__name__)}


def operation(route: Route, settings: Settings, components: Components) -> dict[str, Any]:
    """The operation object of one route."""
    op: dict[str, Any] = {"summary": route.summary}
    if route.staff:
        op["security"] = [{"staffToken": []}]
    if route.params:
        op["parameters"] = [p.document() for p in route.params]
    model = route.body_model(settings)
    if model is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": components.ref(model)}}}
    responses: dict[str, Any] = {}
    for status, reply in route.responses().items():
        responses[str(status)] = {"description": reply.description}
        if reply.model is not None:
            schema = components.ref(reply.model)
        elif reply.media_type != "application/json":
            schema = {"type": "string"}
        else:
            continue
        responses[str(status)]["content"] = {reply.media_type: {"schema": schema}}
    op["responses"] = responses
    return op


def openapi_document(routes: Iterable[Route], settings: Settings) -> dict[str, Any]:
    """The document of `routes` as an app with `settings` serves them."""
    components = Components()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route, settings, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Makana support assistant API",
            "version": "1.0.0",
            "description": (
                "Customer chat API used by the website widget and the in-app pane, and the support team's API. "
                "Every error has the shape {\"error\": {\"code\", \"message\"}}. "
                "Generated from the route registry and the pydantic models of the web service."
            ),
        },
        "components": {
            "securitySchemes": {"staffToken": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(components.schemas.items())),
        },
        "paths": paths,
    }
