"""An in-memory SecretProvider that remembers which secrets were asked for."""

from __future__ import annotations

from domain.errors import TerminalError


class InMemorySecretProvider:
    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self.secrets: dict[str, str] = dict(secrets or {})
        self.requested: list[str] = []

    def get(self, name: str, *, fresh: bool = False) -> str:
        self.requested.append(name)
        try:
            return self.secrets[name]
        except KeyError:
            # The name is safe to show; the value never is.
            raise TerminalError(
                f"secret {name!r} does not exist", code="secret_not_found"
            ) from None
