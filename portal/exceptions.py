class ApplicationError(Exception):
    """A domain error with a message a person can act on, and optional details."""

    def __init__(self, message: str, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
