"""Schema fuzzing of the OpenAPI description with schemathesis: generated requests for every
operation (valid and invalid against the schema), zero 5xx, every response valid against its
documented schema, every 4xx in the one error shape."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (pip install -e '.[test]')")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

from app.main import create_app  # noqa: E402

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())

# Schema-valid bodies may still be refused (a 4×3 W_hh is a valid "array of arrays"), so the
# positive-acceptance check does not apply; every other check does.
EXCLUDE = [c for c in (getattr(checks, "positive_data_acceptance", None),) if c is not None]


@schema.parametrize()
@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    response = case.call_and_validate(excluded_checks=EXCLUDE)
    assert response.status_code < 500
    if 400 <= response.status_code < 500:
        err = response.json()["error"]
        assert set(err) == {"status", "code", "params", "field", "expected", "got", "message"} and err["message"]
