"""What authorization adds to a request: `GET /api/v1/servers/NAME` for a user with 50 bindings
across 5 groups, against the same request by the admin, on SQLite and PostgreSQL.

Setup (outside the timings), per engine, on a fresh mcpd: 100 servers; the user ``bench-user``
with a password; 5 Groups that each list the user; 5 RbacDefinitions, one per group, of 10
bindings each: name-scoped ones on other servers and kind-wide ones on other kinds, and (the
very last binding) ``view`` on the target server, the only one that lets the request through.
The user logs in (`POST /api/v1/auth/login`) and gets a token like anyone else.

The user is made through the `User` kind (`PUT /api/v1/users/NAME` with ``spec.password``).

Timing: two keep-alive `http.client` connections, the admin's and the user's, take turns (the
order flips every round so neither always goes first), many requests each.
"""

from __future__ import annotations

import time

from bench.harness import (
    DATABASES,
    Api,
    Mcpd,
    Row,
    percentile,
    postgres_available,
    progress,
    running_mcpd,
    seed_servers,
    server_name,
)

USER = "bench-user"
PASSWORD = "bench user password"
GROUPS = 5
BINDINGS_PER_DEFINITION = 10
SERVERS = 100
TARGET = server_name(SERVERS // 2)
GOAL_RATIO = 1.10
ROLES = ("view", "create", "edit", "delete", "run")
OTHER_KINDS = ("templates", "projects", "prompts", "secrets", "groups")


def bindings(definition: int) -> list[dict[str, str]]:
    """The 10 bindings of one definition; the last binding of the last one grants the target."""
    out: list[dict[str, str]] = []
    for b in range(BINDINGS_PER_DEFINITION):
        i = definition * BINDINGS_PER_DEFINITION + b
        if i == GROUPS * BINDINGS_PER_DEFINITION - 1:
            out.append({"role": "view", "resource": "servers", "name": TARGET})
        elif b % 2:
            # Kind-wide, on other kinds (a kind-wide view of servers would let everything in).
            out.append({"role": ROLES[b // 2], "resource": OTHER_KINDS[definition]})
        else:
            # Name-scoped, on servers other than the target.
            out.append({"role": ROLES[b // 2], "resource": "servers", "name": server_name(i)})
    return out


def _put(api: Api, plural: str, name: str, kind: str, spec: dict[str, object]) -> None:
    body = {"apiVersion": "mcpctl/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    api.json("PUT", f"/api/v1/{plural}/{name}", body)


def setup_user(mcpd: Mcpd) -> str:
    """Servers, the user, its groups and definitions; the user's token."""
    seed_servers(mcpd, SERVERS, workers=4)
    admin = mcpd.client()
    try:
        _put(admin, "users", USER, "User", {"password": PASSWORD})
        for g in range(GROUPS):
            group = f"bench-group-{g}"
            _put(admin, "groups", group, "Group", {"members": [USER]})
            _put(
                admin,
                "rbacdefinitions",
                f"bench-rbac-{g}",
                "RbacDefinition",
                {"subjects": [f"group:{group}"], "bindings": bindings(g)},
            )
        login = admin.json("POST", "/api/v1/auth/login", {"user": USER, "password": PASSWORD})
    finally:
        admin.close()
    return str(login["token"])


def _one(api: Api, path: str) -> float:
    start = time.perf_counter()
    status, data = api.request("GET", path)
    elapsed = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}: {data[:300]!r}")
    return elapsed


def measure(mcpd: Mcpd, token: str, runs: int) -> tuple[list[float], list[float]]:
    """Admin and user samples of the same GET, taking turns on their own connections."""
    path = f"/api/v1/servers/{TARGET}"
    admin, user = mcpd.client(), Api(mcpd.port, token)
    try:
        for _ in range(20):  # warm up both connections and mcpd's caches
            _one(admin, path)
            _one(user, path)
        admin_s: list[float] = []
        user_s: list[float] = []
        for i in range(runs):
            if i % 2:
                user_s.append(_one(user, path))
                admin_s.append(_one(admin, path))
            else:
                admin_s.append(_one(admin, path))
                user_s.append(_one(user, path))
    finally:
        admin.close()
        user.close()
    return admin_s, user_s


def run(quick: bool) -> list[Row]:
    runs = 300 if quick else 2000
    rows: list[Row] = []
    for database in DATABASES:
        if database == "postgres" and (problem := postgres_available()):
            progress(f"authz: SKIPPING PostgreSQL ({problem})")
            continue
        db = "SQLite" if database == "sqlite" else "PostgreSQL"
        with running_mcpd(database) as mcpd:
            progress(f"authz: {db}: {SERVERS} servers, user with 50 bindings in 5 groups")
            token = setup_user(mcpd)
            progress(f"authz: {db}: {runs} requests each, admin and user taking turns")
            admin_s, user_s = measure(mcpd, token, runs)
        base = Row("authz", f"baseline: GET one server as admin, {db}", admin_s, note="baseline")
        p99_ratio = percentile(user_s, 99) / base.p99
        rows.append(base)
        rows.append(
            Row(
                "authz",
                f"GET one server as a user with 50 bindings across 5 groups, {db}",
                user_s,
                baseline=base.median,
                goal=base.median * GOAL_RATIO,
                p99_goal=base.p99 * GOAL_RATIO,
                note=f"goal: under {GOAL_RATIO:.2f}x the admin's; p99 ratio {p99_ratio:.2f}x",
                details="user made with PUT /api/v1/users/NAME; logged in with POST /api/v1/auth/login",
            )
        )
    return rows
