"""tenant_guard for Django (PostgreSQL backend, psycopg 3).

settings.py::

    MIDDLEWARE = [
        ...,                                   # after your authentication
        "tenant_guard_django.TenantGuardMiddleware",
    ]
    # A callable(request) -> token or None; default: request.tenant_guard_token
    TENANT_GUARD_TOKEN = "myapp.auth.tenant_token"
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            ...,
            "OPTIONS": {**tenant_guard_django.DATABASE_OPTIONS, "pool": True},
        }
    }

The middleware runs each request that has a token in ONE transaction
(``transaction.atomic``) whose first statement is
``SELECT tenant_guard.set_context(%s)``; the view's queries, signals and
template rendering inside that request all see the tenant; an exception rolls
everything back and propagates. The context is transaction-scoped, so a
pooled or persistent connection (``CONN_MAX_AGE``, ``"pool"``) goes back
without a tenant. Requests without a token run unchanged, and tenant_guard
refuses their queries on protected tables.

* ``DATABASE_OPTIONS`` turns on ``server_side_binding``: by default Django's
  psycopg 3 backend interpolates parameters into the SQL text on the client,
  so the token would be part of a statement the server logs on an error.
  The middleware refuses to start (ImproperlyConfigured) without it.
* ``on_commit(func)``: ``transaction.on_commit`` callbacks run after COMMIT,
  outside the request's transaction, hence without a context. This one runs
  ``func`` in a new tenant transaction under the same token.
* ``tenant_atomic(token)``: the same transaction for code outside a request
  (management commands, task workers).
"""

import contextvars
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils.module_loading import import_string

__all__ = ["DATABASE_OPTIONS", "TenantGuardMiddleware", "tenant_atomic", "on_commit", "TenantContextError"]

DATABASE_OPTIONS = {"server_side_binding": True}

_current = contextvars.ContextVar("tenant_guard_token", default=None)


class TenantContextError(RuntimeError):
    """No tenant transaction is open where one is needed."""


def _check_binding(using):
    options = connections[using].settings_dict.get("OPTIONS", {})
    if not options.get("server_side_binding"):
        raise ImproperlyConfigured(
            f"tenant_guard: DATABASES[{using!r}]['OPTIONS'] needs server_side_binding=True "
            "(tenant_guard_django.DATABASE_OPTIONS) so the token travels as a bind parameter"
        )


@contextmanager
def tenant_atomic(token, using=None):
    """One transaction under ``token``'s tenant (commit at the end, rollback
    and re-raise on an exception)."""
    if not isinstance(token, str) or not token:
        raise TypeError("tenant_atomic: token must be a non-empty string")
    using = using or DEFAULT_DB_ALIAS
    with transaction.atomic(using=using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT tenant_guard.set_context(%s)", [token])
        reset = _current.set((token, using))
        try:
            yield
        finally:
            _current.reset(reset)


def on_commit(func, using=None):
    """Like ``transaction.on_commit``, but ``func`` runs in its own tenant
    transaction under the token of the transaction that registered it."""
    current = _current.get()
    if current is None:
        raise TenantContextError("on_commit: no tenant transaction is open (use it inside tenant_atomic or a request)")
    token, alias = current

    def run():
        with tenant_atomic(token, using=alias):
            func()

    transaction.on_commit(run, using=using or alias)


def _token_from_request(request):
    return getattr(request, "tenant_guard_token", None)


class TenantGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        getter = getattr(settings, "TENANT_GUARD_TOKEN", None)
        self.get_token = import_string(getter) if isinstance(getter, str) else (getter or _token_from_request)
        self.using = getattr(settings, "TENANT_GUARD_DATABASE", DEFAULT_DB_ALIAS)
        _check_binding(self.using)

    def __call__(self, request):
        token = self.get_token(request)
        if token is None:
            return self.get_response(request)
        with tenant_atomic(token, using=self.using):
            return self.get_response(request)
