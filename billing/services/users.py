"""Staff accounts: creation, roles, passwords, deactivation, sign-in."""

from collections.abc import Iterable

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from billing.extensions import db
from billing.models import Role, User, UserRole
from billing.models.types import utcnow
from billing.services import ServiceError
from billing.services import audit

# Compared against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="pbkdf2:sha256:1000")


def _hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def check_password_strength(password: str, *, email: str = "", field: str = "password") -> None:
    """Raise ServiceError unless the password is long enough and not trivially guessable."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        raise ServiceError(f"Use at least {minimum} characters.", field)
    if len(set(password)) < 4:
        raise ServiceError("Use a less repetitive password.", field)
    if email and email.split("@")[0].lower() in password.lower():
        raise ServiceError("The password must not contain your email name.", field)


def find_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def create_user(email: str, name: str, password: str, roles: Iterable[Role]) -> User:
    """Create an active staff account and audit it. Raises ServiceError for a taken email,
    a weak password or no role."""
    email = email.strip().lower()
    roles = set(roles)
    if not roles:
        raise ServiceError("Choose at least one role.", "roles")
    if find_by_email(email):
        raise ServiceError("A user with this email already exists.", "email")
    check_password_strength(password, email=email)
    user = User(email=email, name=name.strip(), password_hash=_hash(password))
    user.role_rows = [UserRole(role=r) for r in sorted(roles)]
    db.session.add(user)
    audit.record("user.create", user, changes={"email": email, "name": user.name, "roles": sorted(roles)})
    return user


def _active_admin_count() -> int:
    """Active admins, their rows locked so two admins cannot demote each other at once."""
    ids = db.session.scalars(
        sa.select(User.id).join(UserRole)
        .where(User.active.is_(True), UserRole.role == Role.ADMIN)
        .with_for_update(of=User)
    ).all()
    return len(set(ids))


def _refuse_if_last_admin(user: User, message: str) -> None:
    if user.active and Role.ADMIN in user.roles and _active_admin_count() <= 1:
        raise ServiceError(message)


def update_user(user: User, *, name: str, roles: Iterable[Role]) -> None:
    """Change a user's name and roles. Raises ServiceError when no role is left or when it
    would remove the last active admin."""
    roles = set(roles)
    if not roles:
        raise ServiceError("Choose at least one role.", "roles")
    if Role.ADMIN not in roles:
        _refuse_if_last_admin(user, "This is the only active admin; make someone else an admin first.")
    before = sorted(user.roles)
    changes = {}
    if name.strip() != user.name:
        changes["name"] = [user.name, name.strip()]
        user.name = name.strip()
    if set(before) != roles:
        changes["roles"] = [before, sorted(roles)]
        user.role_rows = [r for r in user.role_rows if r.role in roles] + [
            UserRole(role=r) for r in sorted(roles - set(before))
        ]
        user.session_epoch += 1
    if changes:
        audit.record("user.update", user, changes=changes)


def reset_password(user: User, new_password: str) -> None:
    """Set a new password and end the user's other sessions. Raises ServiceError if it is weak."""
    check_password_strength(new_password, email=user.email, field="new_password")
    user.password_hash = _hash(new_password)
    user.session_epoch += 1
    audit.record("user.password_reset", user)


def change_own_password(user: User, current: str, new_password: str) -> None:
    """Let a signed-in user change their password. Raises ServiceError if `current` is wrong."""
    if not check_password_hash(user.password_hash, current):
        raise ServiceError("That is not your current password.", "current_password")
    check_password_strength(new_password, email=user.email, field="new_password")
    user.password_hash = _hash(new_password)
    user.session_epoch += 1
    audit.record("user.password_change", user)


def deactivate(user: User, *, by: User | None = None) -> None:
    """Stop a user from signing in (the row stays). Raises ServiceError for oneself or the last admin."""
    if by is not None and by.id == user.id:
        raise ServiceError("You cannot deactivate your own account.")
    _refuse_if_last_admin(user, "This is the only active admin and cannot be deactivated.")
    user.active = False
    user.session_epoch += 1
    audit.record("user.deactivate", user)


def reactivate(user: User) -> None:
    user.active = True
    audit.record("user.reactivate", user)


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None. Audits the attempt either way."""
    user = find_by_email(email)
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user and ok and user.active:
        user.last_login_at = utcnow()
        audit.record("auth.login", user, actor=user)
        return user
    reason = "inactive" if user and ok else "bad_credentials"
    audit.record(
        "auth.login_failed", user, changes={"email": email.strip().lower()[:254], "reason": reason}
    )
    return None
