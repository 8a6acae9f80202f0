"""The password gate in front of the app, for `citeline ui` off loopback (`CITELINE_UI_PASSWORD`).

Until the password is given, the page holds only the password box: no sidebar, no knowledge-base folder,
no upload, ingest or remove. A wrong password costs a second, to slow guessing.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import MutableMapping
from typing import Any

import streamlit as st

SIGNED_IN = "signed_in"
WRONG_PASSWORD_DELAY_S = 1.0


def login_gate(password: str | None, state: MutableMapping[str, Any] | Any) -> bool:
    """True when the visitor may use the app: no password is configured, or this session has given it."""
    if not password or state.get(SIGNED_IN):
        return True
    st.markdown("#### Citeline")
    st.caption("This knowledge base is protected: enter the password it was started with.")
    given = st.text_input("Password", type="password", key="login_password")
    if st.button("Sign in", type="primary", key="login"):
        if hmac.compare_digest(given.encode(), password.encode()):
            state[SIGNED_IN] = True
            state.pop("login_password", None)  # the session keeps the fact, not the password
            st.rerun()
        time.sleep(WRONG_PASSWORD_DELAY_S)
        st.error("Wrong password.", icon=":material/lock:")
    return False
