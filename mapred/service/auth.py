"""Who is asking: bearer tokens to principals, and the 401/403 answers.

Every route except the health probes and the page's static shell depends on
``current_principal`` (``Authorization: Bearer TOKEN``).  WebHDFS routes use
``webhdfs_principal``, which also takes the token as the ``delegation=``
query parameter — how existing WebHDFS clients send one.  A request then acts
as its principal: ``require_admin`` and ``check_owner`` turn "may not" into a
403 naming what was refused.  What a principal may do with files is decided
in ``access``.

Usage in another router module::

    from fastapi import Depends
    from mapred.service.auth import current_principal, require_admin

    @router.get("/api/v1/models")
    def models(principal: Principal = Depends(current_principal)): ...
"""
from __future__ import annotations

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from mapred.security.principals import Principal, Role
from mapred.service.errors import ApiError
from mapred.service.tokens import TokenRejected

bearer = HTTPBearer(auto_error=False, description="a mapred token: `mapred token create --user U --role R`")
delegation = APIKeyQuery(name="delegation", auto_error=False,
                         description="WebHDFS clients' way to send the same token")


def unauthorized(message: str, reason: str = "missing_token") -> ApiError:
    """401 with the ``WWW-Authenticate`` header a client needs."""
    return ApiError(401, message, "Unauthorized", "SecurityException",
                    {"WWW-Authenticate": 'Bearer realm="mapred"'}, reason=reason)


def forbidden(message: str) -> ApiError:
    """403: authenticated, but this principal may not do this."""
    return ApiError(403, message, "Forbidden", "AccessControlException", reason="forbidden")


def _principal(request: Request, token: str | None) -> Principal:
    if not token:
        raise unauthorized("this route needs Authorization: Bearer TOKEN (make one with `mapred token create`)")
    try:
        principal = request.app.state.tokens.authenticate(token)
    except TokenRejected as exc:
        raise unauthorized(str(exc), reason=f"token_{exc.reason}") from None
    if not principal.role.is_person:
        raise forbidden(f"principal {principal.name} ({principal.role.value}) is a node, not a person")
    request.state.principal = principal
    return principal


def current_principal(request: Request,
                      creds: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
    """The principal of the request's bearer token; 401 without a valid one."""
    return _principal(request, creds.credentials if creds else None)


def webhdfs_principal(request: Request,
                      creds: HTTPAuthorizationCredentials | None = Security(bearer),
                      token: str | None = Security(delegation)) -> Principal:
    """As ``current_principal``, also accepting ``?delegation=TOKEN``."""
    if creds is None and token:
        request.state.delegation = token      # the data-step redirect must carry it on
    return _principal(request, creds.credentials if creds else token)


def require_admin(principal: Principal = Depends(current_principal)) -> Principal:
    """Only admins pass; others get 403."""
    if principal.role is not Role.ADMIN:
        raise forbidden(f"{principal.name} is not an admin")
    return principal


def check_owner(principal: Principal, owner: str, what: str) -> None:
    """403 unless ``principal`` may act on a thing ``owner`` owns (admins may act on anything)."""
    if not principal.may_act_on(owner):
        raise forbidden(f"{principal.name} may not access {what} (it belongs to {owner or 'nobody'})")
