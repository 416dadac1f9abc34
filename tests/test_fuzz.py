"""Schema-driven fuzzing (schemathesis) of every operation in the OpenAPI document,
against the running web service: no input the schema allows may produce a 5xx, and
neither may the bad input schemathesis derives from it.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from bot.web.app import ROUTES
from bot.web.openapi import openapi_document
from bot.settings import Settings

pytestmark = pytest.mark.services

EXAMPLES = 20
STREAM_READ_S = 3  # an event stream stays open; its status is what is checked


def cases():
    """Every operation with valid input; those that take input also with invalid input."""
    document = openapi_document(ROUTES, Settings())
    schema = schemathesis.openapi.from_dict(document)
    for result in schema.get_all_operations():
        operation = result.ok()
        spec = document["paths"][operation.path][operation.method.lower()]
        name = f"{operation.method.upper()} {operation.path}"
        yield pytest.param(operation, GenerationMode.POSITIVE, id=f"{name} valid")
        if spec.get("parameters") or spec.get("requestBody"):
            yield pytest.param(operation, GenerationMode.NEGATIVE, id=f"{name} invalid")


@pytest.mark.parametrize(("operation", "mode"), list(cases()))
def test_no_server_error(stack, operation, mode):
    token = stack.settings.staff_tokens.split(":", 1)[1]
    spec = openapi_document(ROUTES, Settings())["paths"][operation.path][operation.method.lower()]
    streams = "text/event-stream" in spec["responses"].get("200", {}).get("content", {})

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), as_staff=st.booleans())
    def run(case, as_staff):
        # Calls as staff and anonymous, so both paths are exercised.
        headers = {"Authorization": f"Bearer {token}"} if as_staff else {}
        response = case.call(base_url=stack.web, headers=headers, timeout=STREAM_READ_S if streams else 30)
        assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text[:300])

    run()
