"""`metav1.Status` failures, shaped as kube-apiserver sends them."""

from __future__ import annotations

from typing import Any, ClassVar

_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """A request the API server refuses; `status()` is the body it answers with."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            # metav1.StatusDetails' field order, as the Go encoder writes it
            order = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
            body["details"] = {
                **{k: self.details[k] for k in order if k in self.details},
                **{k: v for k, v in self.details.items() if k not in order},
            }
        body["code"] = self.code  # metav1.Status puts code after details
        return body


def _qualified(kind_plural: str, group: str) -> str:
    return f"{kind_plural}.{group}" if group else kind_plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{_qualified(plural, group)} "{name}" not found',
        details={"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural},
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    details: dict[str, Any] = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return ApiError(
        409, f'{_qualified(plural, group)} "{name}" already exists', reason="AlreadyExists", details=details
    )


def conflict(plural: str, group: str, name: str) -> ApiError:
    details: dict[str, Any] = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details=details,
    )


class FieldError:
    """One `field.Error`: `type_` is the cause reason (FieldValueInvalid, FieldValueRequired, ...)."""

    __slots__ = ("detail", "field", "type_", "value")

    _TEXT: ClassVar[dict[str, str]] = {
        "FieldValueRequired": "Required value",
        "FieldValueInvalid": "Invalid value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueTooLong": "Too long",
        "FieldValueTypeInvalid": "Invalid value",
    }
    _NO_VALUE = object()

    def __init__(self, type_: str, field: str, value: Any = _NO_VALUE, detail: str = "") -> None:
        self.type_ = type_
        self.field = field
        self.value = value
        self.detail = detail

    def __str__(self) -> str:
        text = f"{self.field}: {self._TEXT.get(self.type_, 'Invalid value')}"
        if self.value is not FieldError._NO_VALUE and self.type_ not in (
            "FieldValueRequired",
            "FieldValueForbidden",
        ):
            text += f": {_go_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return '"object"' if isinstance(value, dict) else '"array"'
    return str(value)


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid: `<Kind>[.<group>] "<name>" is invalid: <err>` or `... is invalid: [<err>, <err>]`."""
    qualified = f"{kind}.{group}" if group else kind
    joined = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    details: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "causes": [
            {"reason": e.type_, "message": str(e).split(": ", 1)[1], "field": e.field} for e in errors
        ],
    }
    if group:
        details["group"] = group
    return ApiError(422, f'{qualified} "{name}" is invalid: {joined}', details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def method_not_allowed() -> ApiError:
    return ApiError(405, "the server does not allow this method on the requested resource")


def expired(message: str) -> ApiError:
    return ApiError(410, message)
