"""The API under a fuzzer: Schemathesis sends every operation of the live server's
/api/v1/schema/ requests generated from that schema (valid ones and, as often, invalid ones), with
a fixed seed, as the owner of a throwaway organization. Every answer must be no server error, with
a status code and a body the schema documents; every operation that reads JSON also gets one body
nested 900 deep.

Random ids only ever meet 404s, so the requests carry the organization's real objects most of the
time (``tests/support/api_world.py``): in the path, and in the fields and query parameters that
name one. An operation that uses its object up (a delete, an erase, a merge, an undo...) gets a new
object for every example, so the operations after it still find theirs; ownership changes hands
and the organization is deleted last. Every operation must see a 2xx at least once, or be listed in
``NO_SUCCESS`` with the reason.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field

import hypothesis
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api_world import DROP, World

SEED = 20261213
EXAMPLES = 25  # per operation: about 2,800 requests in all
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]

# Operations that never get a 2xx here, each with its reason (none today).
NO_SUCCESS: dict[str, str] = {}

# The last two, in this order: ownership goes to another member, who then deletes the organization.
LAST = ["POST /api/v1/organization/transfer-ownership/", "DELETE /api/v1/organization/"]

# Operations that use their object up: each example gets a new one (deletes too).
USES_UP = {
    "POST /api/v1/contacts/{id}/erase/",
    "POST /api/v1/contacts/{id}/merge/",
    "POST /api/v1/bulk-jobs/{id}/undo/",
    "POST /api/v1/imports/{id}/start/",
    "POST /api/v1/imports/{id}/mapping/",  # a draft each time: a real id, so the body decides
    "POST /api/v1/messages/{uuid}/retry/",
    "POST /api/v1/members/{id}/deactivate/",
    "PATCH /api/v1/members/{id}/",
    "POST /api/v1/sessions/{uuid}/connect/",
    "POST /api/v1/sessions/{uuid}/disconnect/",
    "POST /api/v1/sessions/{uuid}/logout/",
    "POST /api/v1/sessions/{uuid}/pairing-code/",
    "POST /api/v1/sessions/{uuid}/simulate/",
}

# Fields whose objects the operation may use up (a merge, a bulk delete, a transfer): always new
# objects of the world's, so that no generated id there removes one the others use.
ALWAYS_OURS = {"other_id", "ids", "member_id"}


def _one_selection(case, world: World) -> None:
    """contacts/bulk/ takes ``ids`` or ``filters``, not both."""
    if isinstance(case.body, dict) and "ids" in case.body:
        case.body.pop("filters", None)


def _one_anchor(case, world: World) -> None:
    """A chat's messages are paged from one message at most."""
    anchors = [name for name in ("around", "before", "after") if name in (case.query or {})]
    for name in anchors[1:]:
        del case.query[name]


def _confirmed(case, world: World) -> None:
    """The organization is deleted once its slug is typed."""
    case.query = {**(case.query or {}), "confirm": world.org.slug}


# What the schema cannot say (one field excludes another, a value must match): applied after
# feeding, most of the time.
SHAPES = {
    "POST /api/v1/contacts/bulk/": _one_selection,
    "GET /api/v1/chats/{uuid}/messages/": _one_anchor,
    "DELETE /api/v1/organization/": _confirmed,
}

# What the world learns from a 2xx: after a transfer, the new owner carries on.
AFTER_SUCCESS = {
    "POST /api/v1/organization/transfer-ownership/": lambda case, world: world.hand_over(
        case.body["member_id"]
    ),
}

DEEP = b'{"name": ' + b"[" * 900 + b"]" * 900 + b"}"  # nesting no honest client sends


def _collection(path: str) -> str:
    return path.removeprefix("/api/v1/").split("/")[0]


def _feed(case, label: str, world: World, data) -> None:
    """Put the world's objects into a generated case, most of the time."""
    fresh = label in USES_UP or (label.startswith("DELETE") and label.endswith("}/"))
    for name in case.path_parameters or {}:
        kind = _collection(case.operation.path)
        if fresh and kind in world.pools:
            waiting = kind == "sessions" and data.draw(st.booleans(), label="waiting")
            case.path_parameters[name] = world.new(kind, waiting=waiting)
        elif kind in world.pools and data.draw(st.integers(0, 3), label="real id") > 0:
            case.path_parameters[name] = data.draw(st.sampled_from(world.pools[kind]))
    for container in (case.query, case.body):
        if not isinstance(container, dict):
            continue
        for name in list(container):
            if name in ALWAYS_OURS or data.draw(st.integers(0, 3), label=name) > 0:
                value = world.named(name)
                if value is DROP:
                    del container[name]
                elif value is not None:
                    container[name] = value
    if label in SHAPES and data.draw(st.integers(0, 3), label="shape") > 0:
        SHAPES[label](case, world)


@dataclass
class Findings:
    statuses: dict[str, collections.Counter] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    failures: dict[tuple[str, str], list[str]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )

    def fail(self, label: str, text: str) -> None:
        self.failures[(label, text.strip().splitlines()[0])].append(text)

    @property
    def requests(self) -> int:
        return sum(sum(counter.values()) for counter in self.statuses.values())

    def succeeded(self, label: str) -> bool:
        return any(200 <= code < 300 for code in self.statuses[label])

    def report(self) -> str:
        """Each distinct failure once, with how often it happened and its first example."""
        return "\n\n".join(
            f"{label} ({len(texts)}x): {texts[0]}"
            for (label, _title), texts in self.failures.items()
        )


def _cases(operation):
    """Requests the schema allows, and (as often) requests it does not: both must get no 500."""
    return st.one_of(
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )


def _fuzz(operation, label: str, world: World, http, found: Findings) -> None:
    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=_cases(operation), data=st.data())
    def examples(case, data):
        _feed(case, label, world, data)
        headers = {"Authorization": f"Bearer {world.key}"}
        response = case.call(session=http, headers=headers, timeout=30)
        found.statuses[label][response.status_code] += 1
        if 200 <= response.status_code < 300 and label in AFTER_SUCCESS:
            AFTER_SUCCESS[label](case, world)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseExceptionGroup as failures:
            for failure in failures.exceptions:
                found.fail(label, str(failure))

    examples()


def _deep_json(operation, label: str, world: World, http, base_url: str, found: Findings):
    """One body nested 900 deep to every operation that reads JSON: a 4xx, never a 500."""
    if "application/json" not in (operation.definition.raw.get("requestBody") or {}).get(
        "content", {}
    ):
        return
    path = operation.path
    for name in ("id", "uuid"):
        kind = _collection(path)
        if "{" + name + "}" in path and kind in world.pools:
            path = path.replace("{" + name + "}", str(world.pools[kind][0]))
    response = http.request(
        operation.method.upper(),
        base_url + path,
        data=DEEP,
        headers={"Authorization": f"Bearer {world.key}", "Content-Type": "application/json"},
        timeout=30,
    )
    found.statuses[label][response.status_code] += 1
    if response.status_code >= 500:
        found.fail(label, f"a body nested 900 deep answered {response.status_code}")


def test_every_operation_answers_fuzzed_requests_as_documented_without_a_server_error(
    asgi_server,
):
    world = World()
    schema = schemathesis.openapi.from_url(f"{asgi_server.url}/api/v1/schema/")
    operations = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        operations[f"{operation.method.upper()} {operation.path}"] = operation
    order = sorted(operations, key=lambda label: LAST.index(label) if label in LAST else -1)
    found = Findings()
    with requests.Session() as http:
        for label in order:
            _fuzz(operations[label], label, world, http, found)
            _deep_json(operations[label], label, world, http, asgi_server.url, found)

    never = sorted(label for label in operations if not found.succeeded(label))
    print(
        f"\nfuzzed {len(operations)} operations with {found.requests} requests; "
        f"{len(operations) - len(never)} answered 2xx at least once; "
        f"{len(found.failures)} distinct failures; never 2xx: "
        + json.dumps({label: dict(found.statuses[label]) for label in never})
    )
    assert not found.failures, found.report()
    assert set(NO_SUCCESS) <= set(operations), "NO_SUCCESS names an operation that is gone"
    assert never == sorted(NO_SUCCESS), json.dumps(
        {label: dict(found.statuses[label]) for label in never}, indent=1
    )
