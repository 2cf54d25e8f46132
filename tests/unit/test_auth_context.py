"""AuthContext.from_dict: what a caller passes as its auth context, read or refused with a 401."""
from __future__ import annotations

import pytest

from weintervene.auth import AuthContext, Role
from weintervene.errors import Unauthorized


def test_a_context_round_trips_through_its_dict():
    auth = AuthContext(user_id="u1", tenant_id="t1", role=Role.TEACHER, session_id="s1")
    assert AuthContext.from_dict(auth.to_dict()) == auth
    assert AuthContext.from_dict(auth) is auth


@pytest.mark.parametrize("data", [None, {}, {"user_id": "u1"}, {"role": "teacher"}, {"user_id": "u1", "role": "wizard"},
                                  ["u1", "teacher"], "u1", 42])
def test_anything_else_is_not_signed_in_never_a_crash(data):
    with pytest.raises(Unauthorized) as refused:
        AuthContext.from_dict(data)
    assert refused.value.code == "not_authenticated"
