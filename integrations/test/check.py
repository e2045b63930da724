"""Checks the Python integrations (psycopg, SQLAlchemy, Django) against a real
server, as an application role that does not own the tables. Run by
tests/integrations/run (see check.mjs for the environment it passes and the
seed rows). Prints "ok <suite> <check>" / "not ok <suite> <check>: <reason>";
never prints a token or the secret.

Each suite runs the same checks through its helper (all must pass) and again
with the helper bypassed the way the pitfall it avoids would (the named checks
must FAIL then: proof that they can).
"""

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
INT = os.path.dirname(HERE)
for sub in ("psycopg", "sqlalchemy", "django"):
    sys.path.insert(0, os.path.join(INT, sub))
sys.path.insert(0, HERE)

import jwt  # noqa: E402
import psycopg  # noqa: E402
from psycopg_pool import ConnectionPool  # noqa: E402

DB = os.environ["TG_INT_DB"]
ROLE = os.environ["TG_INT_ROLE"]
ADMIN = os.environ.get("TG_INT_ADMIN", "postgres")
SECRET = bytes.fromhex(os.environ["TG_INT_SECRET_HEX"])
KID = os.environ["TG_INT_KID"]
HOST = os.environ["PGHOST"]
PORT = int(os.environ.get("PGPORT", "5432"))
SUITES = os.environ.get("TG_INT_SUITES", "psycopg sqlalchemy django").split()
BASE = {"psycopg": 1000, "sqlalchemy": 2000, "django": 3000}
APP_DSN = f"host={HOST} port={PORT} dbname={DB} user={ROLE}"

failed = 0
_tokens = {}
_lock = threading.Lock()


def ok(suite, what):
    print(f"ok {suite} {what}", flush=True)


def not_ok(suite, what, why):
    global failed
    failed += 1
    print(f"not ok {suite} {what}: {why}", flush=True)


def reason(e):
    code = getattr(getattr(e, "diag", None), "sqlstate", None) or getattr(getattr(getattr(e, "orig", None), "diag", None), "sqlstate", None)
    msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return f"{code} {msg}" if code else f"{type(e).__name__}: {msg}"


def token(tenant):
    with _lock:
        if tenant not in _tokens:
            now = int(time.time())
            _tokens[tenant] = jwt.encode({"tenant_id": tenant, "sub": f"user-of-{tenant}", "iat": now, "exp": now + 600},
                                         SECRET, algorithm="HS256", headers={"kid": KID})
        return _tokens[tenant]


admin = psycopg.connect(f"host={HOST} port={PORT} dbname={DB} user={ADMIN}", autocommit=True)
admin_lock = threading.Lock()


def admin_rows(q, p=()):
    with admin_lock:
        return admin.execute(q, p).fetchall()


class Fail(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Fail(msg)


def checks(name):
    base, A, B = BASE[name], f"{name}-a", f"{name}-b"

    def mine_only(rows, t):
        return len(rows) > 0 and all(r[1] == t for r in rows)

    def reads(s):
        for t, own, other in ((A, base + 1, base + 2), (B, base + 2, base + 1)):
            rows = s.request(t, lambda h: s.ops["list"](h))
            expect(mine_only(rows, t), f"{t} saw tenants {sorted({r[1] for r in rows})}")
            ids = [r[0] for r in rows]
            expect(own in ids and other not in ids, f"{t} rows {ids}")

    def writes(s):
        s.request(A, lambda h: s.ops["create"](h, base + 10, "a-new"))
        row = admin_rows("SELECT tenant_id FROM projects WHERE id = %s", (base + 10,))
        expect(row and row[0][0] == A, f"insert got tenant {row}")
        seen = s.request(B, lambda h: s.ops["list"](h))
        expect(base + 10 not in [r[0] for r in seen], "B saw A's new row")
        n = s.request(A, lambda h: s.ops["rename_all"](h, f"renamed-by-{A}"))
        (count,), = admin_rows("SELECT count(*) FROM projects WHERE name = %s AND tenant_id <> %s", (f"renamed-by-{A}", A))
        expect(count == 0, f"an update under {A} renamed {count} rows of other tenants")
        expect(n >= 2, f"update reported {n} rows")

    def nested(s):
        s.request(A, lambda h: s.ops["create_nested"](h, base + 11, "a-nested", ["one", "two"]))
        rows = admin_rows("SELECT tenant_id FROM tasks WHERE project_id = %s", (base + 11,))
        expect(len(rows) == 2 and all(r[0] == A for r in rows), f"nested tasks: {rows}")

    def upserts(s):
        try:
            s.request(A, lambda h: s.ops["upsert"](h, base + 2, "hijacked"))
        except Exception:
            pass  # refused (unique or RLS violation) or a no-op: both keep B's row
        (tenant, pname), = admin_rows("SELECT tenant_id, name FROM projects WHERE id = %s", (base + 2,))
        expect(tenant == B and pname != "hijacked", f"B's row became {tenant}/{pname}")
        rows = s.request(A, lambda h: s.ops["list"](h))
        expect(base + 2 not in [r[0] for r in rows], "A sees B's id after the upsert")

    def raw(s):
        tenants = s.request(A, lambda h: s.ops["raw_tenants"](h))
        expect(tenants and all(t == A for t in tenants), f"raw saw {sorted(set(tenants))}")

    def throws(s):
        def work(h):
            s.ops["create"](h, base + 12, "doomed")
            raise RuntimeError("boom")
        thrown = None
        try:
            s.request(A, work)
        except Exception as e:  # noqa: BLE001
            thrown = e
        expect(isinstance(thrown, RuntimeError) and str(thrown) == "boom", f"the error was not re-raised: {thrown and reason(thrown)}")
        expect(not admin_rows("SELECT 1 FROM projects WHERE id = %s", (base + 12,)), "the row written before the throw stayed committed")

    def pool(s):
        def job(i):
            t = A if i % 2 else B
            def work(h):
                rows = s.ops["list"](h)
                s.ops["pause"](h)
                return rows, s.ops["raw_tenants"](h)
            rows, rawt = s.request(t, work)
            return t, rows, rawt
        with ThreadPoolExecutor(8) as ex:
            for t, rows, rawt in ex.map(job, range(24)):
                expect(mine_only(rows, t) and all(x == t for x in rawt), f"a {t} request saw other tenants")
        for _ in range(4):
            try:
                rows = s.unguarded()
            except Exception:  # noqa: BLE001
                continue
            raise Fail(f"a query outside the helper saw tenants {sorted(set(rows))} (a context leaked into the pool)")

    all_checks = {"reads": reads, "writes": writes, "nested writes": nested, "upserts": upserts,
                  "raw queries": raw, "transactions that throw": throws, "concurrent pool": pool}
    all_checks.update(s_extra.get(name, {}))
    return all_checks


s_extra = {}


class Suite:
    def __init__(self, request, ops, unguarded):
        self.request, self.ops, self.unguarded = request, ops, unguarded


def run_suite(name, s, how=None, must_fail=()):
    for what, fn in checks(name).items():
        if how and what not in must_fail:
            continue
        err = None
        try:
            fn(s)
        except Exception as e:  # noqa: BLE001
            err = e
        if not how:
            not_ok(name, what, reason(err)) if err else ok(name, what)
        elif err:
            ok(name, f"{what} fails when {how} ({reason(err)})")
        else:
            not_ok(name, f"{what} fails when {how}", "it passed: the check cannot tell")


PAUSE = "SELECT 1 FROM pg_sleep(0.02)"


# ------------------------------------------------------------------ psycopg
def psycopg_suite():
    from tenant_guard_psycopg import tenant_connection, tenant_transaction, TenantContextError

    name = "psycopg"
    ops = {
        "list": lambda c: c.execute("SELECT id, tenant_id FROM projects ORDER BY id").fetchall(),
        "create": lambda c, i, n: c.execute("INSERT INTO projects (id, name) VALUES (%s, %s)", (i, n)),
        "create_nested": lambda c, i, n, titles: (
            c.execute("INSERT INTO projects (id, name) VALUES (%s, %s)", (i, n)),
            c.cursor().executemany("INSERT INTO tasks (project_id, title) VALUES (%s, %s)", [(i, t) for t in titles])),
        "upsert": lambda c, i, n: c.execute(
            "INSERT INTO projects (id, name) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name", (i, n)),
        "rename_all": lambda c, n: c.execute("UPDATE projects SET name = %s", (n,)).rowcount,
        "raw_tenants": lambda c: [r[0] for r in c.execute("SELECT tenant_id FROM projects").fetchall()],
        "pause": lambda c: c.execute(PAUSE),
    }
    pool = ConnectionPool(APP_DSN, min_size=2, max_size=2, open=True)

    def unguarded():
        with pool.connection() as c:
            return [r[0] for r in c.execute("SELECT tenant_id FROM projects").fetchall()]

    def helped(t, fn):
        with tenant_connection(pool, token(t)) as c:
            return fn(c)

    def autocommit_is_guarded(_s):
        # In autocommit mode the helper still opens a transaction (BEGIN).
        with psycopg.connect(APP_DSN, autocommit=True) as c:
            with tenant_transaction(c, token(f"{name}-a")) as c2:
                rows = c2.execute("SELECT tenant_id FROM projects").fetchall()
            expect(rows and all(r[0] == f"{name}-a" for r in rows), "autocommit connection saw other tenants")
            # and refuses to start inside a transaction somebody else opened
            c.autocommit = False
            c.execute("SELECT 1")
            try:
                with tenant_transaction(c, token(f"{name}-a")):
                    raise Fail("tenant_transaction ran inside an open transaction")
            except TenantContextError:
                pass
            c.rollback()

    s_extra[name] = {"autocommit connections": autocommit_is_guarded}
    run_suite(name, Suite(helped, ops, unguarded))
    s_extra[name] = {}

    def bypass_no_helper(t, fn):
        with pool.connection() as c:
            return fn(c)
    run_suite(name, Suite(bypass_no_helper, ops, unguarded), "queries skip the helper", ["reads", "raw queries"])

    def bypass_autocommit_set(t, fn):
        # set_context in autocommit mode: tenant_guard refuses it (25P01);
        # ignoring that error leaves the queries without a context.
        with psycopg.connect(APP_DSN, autocommit=True) as c:
            try:
                c.execute("SELECT tenant_guard.set_context(%s)", (token(t),))
            except psycopg.Error:
                pass
            return fn(c)
    run_suite(name, Suite(bypass_autocommit_set, ops, unguarded), "set_context runs in autocommit mode", ["reads"])

    def bypass_session(t, fn):
        with pool.connection() as c:
            c.execute("SELECT tenant_guard.set_context(%s, false)", (token(t),))
            c.commit()
            c.autocommit = True
            try:
                return fn(c)
            finally:
                c.autocommit = False
    run_suite(name, Suite(bypass_session, ops, unguarded),
              "the context is session-scoped (is_local => false) in autocommit",
              ["transactions that throw", "concurrent pool"])
    pool.close()


# --------------------------------------------------------------- SQLAlchemy
def sqlalchemy_suite():
    from sqlalchemy import ForeignKey, Text, create_engine, select, text, update
    from sqlalchemy.dialects.postgresql import insert
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker
    from tenant_guard_sqlalchemy import install, tenant_session, TenantContextError

    name = "sqlalchemy"

    class Base(DeclarativeBase):
        pass

    class Project(Base):
        __tablename__ = "projects"
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        tenant_id: Mapped[str] = mapped_column(Text, server_default=text("tenant_guard.require_tenant_id()"))
        name: Mapped[str] = mapped_column(Text)
        tasks: Mapped[list["Task"]] = relationship(back_populates="project")

    class Task(Base):
        __tablename__ = "tasks"
        id: Mapped[int] = mapped_column(primary_key=True)
        tenant_id: Mapped[str] = mapped_column(Text, server_default=text("tenant_guard.require_tenant_id()"))
        project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
        title: Mapped[str] = mapped_column(Text)
        project: Mapped[Project] = relationship(back_populates="tasks")

    engine = create_engine(f"postgresql+psycopg://{ROLE}@/{DB}?host={HOST}&port={PORT}", pool_size=2, max_overflow=0)
    Session = install(sessionmaker(engine))
    ops = {
        "list": lambda s: [(p.id, p.tenant_id) for p in s.scalars(select(Project).order_by(Project.id))],
        "create": lambda s, i, n: (s.add(Project(id=i, name=n)), s.flush()),
        "create_nested": lambda s, i, n, titles: (s.add(Project(id=i, name=n, tasks=[Task(title=t) for t in titles])), s.flush()),
        "upsert": lambda s, i, n: s.execute(insert(Project).values(id=i, name=n).on_conflict_do_update(index_elements=[Project.id], set_={"name": n})),
        "rename_all": lambda s, n: s.execute(update(Project).values(name=n)).rowcount,
        "raw_tenants": lambda s: list(s.scalars(text("SELECT tenant_id FROM projects"))),
        "pause": lambda s: s.execute(text(PAUSE)),
    }

    def helped(t, fn):
        with tenant_session(Session, token(t)) as s:
            return fn(s)

    def unguarded():
        with Session() as s:
            return list(s.scalars(text("SELECT tenant_id FROM projects")))

    def autocommit_refused(_s):
        ac = install(sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT")))
        try:
            with tenant_session(ac, token(f"{name}-a")) as s:
                s.execute(text("SELECT 1"))
        except TenantContextError:
            return
        raise Fail("an AUTOCOMMIT session was accepted")

    def every_transaction(_s):
        # A commit inside the block starts a new transaction: the hook sets
        # the context again.
        with Session() as s:
            s.info["tenant_guard_token"] = token(f"{name}-a")
            s.execute(text("SELECT 1"))
            s.commit()
            rows = list(s.scalars(text("SELECT tenant_id FROM projects")))
        expect(rows and all(r == f"{name}-a" for r in rows), "after a commit the session lost its tenant")

    s_extra[name] = {"autocommit engines": autocommit_refused, "transactions after a commit": every_transaction}
    run_suite(name, Suite(helped, ops, unguarded))
    s_extra[name] = {}

    plain = sessionmaker(engine)  # no hook installed

    def bypass(t, fn):
        with plain() as s, s.begin():
            s.info["tenant_guard_token"] = token(t)  # ignored: no hook
            return fn(s)
    run_suite(name, Suite(bypass, ops, unguarded), "the session hook is not installed", ["reads", "raw queries"])
    engine.dispose()


# ------------------------------------------------------------------- Django
def django_suite():
    import django
    from django.conf import settings

    name = "django"
    settings.configure(
        DEBUG=False,
        INSTALLED_APPS=["tgapp"],
        DATABASES={"default": {
            "ENGINE": "django.db.backends.postgresql", "NAME": DB, "USER": ROLE, "HOST": HOST, "PORT": PORT,
            "OPTIONS": {"server_side_binding": True, "pool": {"min_size": 1, "max_size": 2, "timeout": 30}},
        }},
        USE_TZ=True,
    )
    django.setup()
    from django.core.exceptions import ImproperlyConfigured
    from django.db import IntegrityError, connection, connections, transaction  # noqa: F401
    from django.test import RequestFactory
    import tenant_guard_django as tgd
    from tgapp.models import Project, Task

    rf = RequestFactory()

    def via_middleware(mw_class):
        def request(t, fn):
            try:
                req = rf.get("/")
                req.tenant_guard_token = token(t)
                return mw_class(lambda r: fn(None))(req)
            finally:
                connections.close_all()  # what request_finished does: back to the pool
        return request

    def raw_tenants(_):
        with connection.cursor() as c:
            c.execute("SELECT tenant_id FROM projects")
            return [r[0] for r in c.fetchall()]

    def create_nested(_, i, n, titles):
        p = Project.objects.create(id=i, name=n)
        for t in titles:
            p.task_set.create(title=t)

    ops = {
        "list": lambda _: list(Project.objects.order_by("id").values_list("id", "tenant_id")),
        "create": lambda _, i, n: Project.objects.create(id=i, name=n),
        "create_nested": create_nested,
        "upsert": lambda _, i, n: Project.objects.update_or_create(id=i, defaults={"name": n}),
        "rename_all": lambda _, n: Project.objects.update(name=n),
        "raw_tenants": raw_tenants,
        "pause": lambda _: connection.cursor().execute(PAUSE),
    }

    def unguarded():
        try:
            return list(Project.objects.values_list("tenant_id", flat=True))
        finally:
            connections.close_all()

    def on_commit_has_context(_s, use_helper=True):
        seen = []

        def view(_req):
            Project.objects.create(id=BASE[name] + (13 if use_helper else 14), name="committed")
            cb = lambda: seen.append(list(Project.objects.values_list("tenant_id", flat=True)))  # noqa: E731
            tgd.on_commit(cb) if use_helper else transaction.on_commit(cb)
        req = rf.get("/")
        req.tenant_guard_token = token(f"{name}-a")
        try:
            tgd.TenantGuardMiddleware(view)(req)
        finally:
            connections.close_all()
        expect(seen and seen[0] and all(t == f"{name}-a" for t in seen[0]), f"the on_commit callback saw {seen}")

    def client_side_binding_refused(_s):
        opts = connections["default"].settings_dict["OPTIONS"]
        opts["server_side_binding"] = False
        try:
            tgd.TenantGuardMiddleware(lambda r: None)
        except ImproperlyConfigured:
            return
        finally:
            opts["server_side_binding"] = True
        raise Fail("the middleware started with client-side parameter binding")

    s_extra[name] = {"on_commit callbacks": on_commit_has_context, "client-side binding": client_side_binding_refused}
    run_suite(name, Suite(via_middleware(tgd.TenantGuardMiddleware), ops, unguarded))

    def no_middleware(t, fn):
        try:
            return fn(None)
        finally:
            connections.close_all()
    s_extra[name] = {"on_commit callbacks": lambda s: on_commit_has_context(s, use_helper=False)}
    run_suite(name, Suite(no_middleware, ops, unguarded), "the middleware is not installed", ["reads", "raw queries"])
    run_suite(name, Suite(via_middleware(tgd.TenantGuardMiddleware), ops, unguarded),
              "callbacks use transaction.on_commit", ["on_commit callbacks"])
    s_extra[name] = {}


SUITE_FNS = {"psycopg": psycopg_suite, "sqlalchemy": sqlalchemy_suite, "django": django_suite}
for s in SUITES:
    try:
        SUITE_FNS[s]()
    except Exception as e:  # noqa: BLE001
        not_ok(s, "suite", reason(e))
admin.close()
sys.exit(1 if failed else 0)
