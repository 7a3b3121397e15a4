"""User: someone who logs in to mcpd, named by Groups and RbacDefinitions as ``user:NAME``.

Decisions:

- A User is an object like every kind (stored in ``objects``; get, describe, apply, diff, edit,
  delete, labels, resourceVersion, RBAC and backup are generic). mcpd keeps the ``users`` table,
  the authentication record (argon2id password hash, tokens), in step with it in the same
  transaction (``mcpd/services/users.py``).
- ``password`` is write-only: accepted on input, hashed into the ``users`` row, never stored in
  the object, never shown, never audited. Absent or null keeps the current password, so a
  manifest without one can be reapplied freely and ``get -o yaml`` output reapplies as is.
- Reapplying the same password answers ``unchanged``: mcpd checks it against the stored hash and
  only a different password counts as a change (and is hashed again).
- Groups' members and RbacDefinitions' ``user:`` subjects stay checked against the ``users``
  table rather than stored as references (see ``references`` below).
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from mcpctl.resources.envelope import Strict
from mcpctl.resources.references import Reference


class UserSpec(Strict):
    displayName: str = Field(default="", max_length=200)
    disabled: bool = Field(
        default=False, description="A disabled user can neither log in nor use their tokens."
    )
    password: SecretStr | None = Field(
        default=None,
        description="Write-only: sets the password (at least 8 characters); never shown. "
        "Absent or null keeps the current one.",
        json_schema_extra={"writeOnly": True},
    )

    def stored(self) -> dict[str, object]:
        """The spec as stored and shown: defaults left out, the password never in it."""
        return self.model_dump(mode="json", exclude_defaults=True, exclude={"password"})


spec_model = UserSpec


def references(spec: UserSpec) -> list[Reference]:
    # A User points at nothing. Who names it (groups, RbacDefinitions) is checked by mcpd when
    # it is deleted; those are not stored references because a ``users`` row may exist for a
    # moment without its object (a restore writes the rows first; databases from before).
    return []
