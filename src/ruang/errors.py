"""The one error type the HTTP layer turns into JSON: ``{"error": code, "message": text}``."""

from __future__ import annotations


class ApiError(Exception):
    """A refusal a client can act on: an HTTP status, a stable machine code and a human sentence."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        """The JSON body of the refusal."""
        return {"error": self.code, "message": self.message}


def not_found(what: str) -> ApiError:
    """404 for an unknown object, naming it."""
    return ApiError(404, "not_found", f"{what} does not exist.")


def unauthorized(message: str = "A valid Bearer token is required.") -> ApiError:
    """401: no credentials, or credentials that do not match anything."""
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    """403: credentials are valid but not for this action."""
    return ApiError(403, "forbidden", message)


def bad_request(code: str, message: str) -> ApiError:
    """400 with a specific code."""
    return ApiError(400, code, message)


def conflict(code: str, message: str) -> ApiError:
    """409: the request is well-formed but the space's state forbids it."""
    return ApiError(409, code, message)


def store_unavailable(exc: BaseException) -> ApiError | None:
    """503 when `exc` says the shared store (Redis, several nodes) is unreachable: not a bug,
    the client should try again. None for anything else."""
    if not type(exc).__module__.startswith("redis."):
        return None
    return ApiError(
        503, "store_unavailable", "Shared state is unreachable; try again.", {"Retry-After": "2"}
    )


FULL_RETRY_AFTER_S = 30  # seconds a client is told to wait when the stages are full
DOWN_RETRY_AFTER_S = 2  # seconds a client is told to wait while a media process restarts


def node_full(what: str) -> ApiError:
    """503 when there is no room for one more full stage (`what` says where)."""
    return ApiError(
        503,
        "node_full",
        f"Every stage on this server is taken ({what}); the spaces already live keep their "
        "room. Try again later or use another server.",
        {"Retry-After": str(FULL_RETRY_AFTER_S)},
    )


def media_unavailable() -> ApiError:
    """503 while a media process is restarting (it is back within about a second)."""
    return ApiError(
        503,
        "media_unavailable",
        "The media process running this space is not answering; try again.",
        {"Retry-After": str(DOWN_RETRY_AFTER_S)},
    )
