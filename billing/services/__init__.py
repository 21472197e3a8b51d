"""The only code that creates or changes rows. Functions flush; views commit."""


class ServiceError(Exception):
    """A business rule refused the request; `field` names the form field to show it next to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
