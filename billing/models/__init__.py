"""All models, imported here so Alembic and the app see every table."""

from billing.models.audit import AuditEvent
from billing.models.settings import ClinicSettings
from billing.models.users import Role, User, UserRole

__all__ = ["AuditEvent", "ClinicSettings", "Role", "User", "UserRole"]
