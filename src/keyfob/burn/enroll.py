"""Talk to a keyfob server to enrol a programmable token for a user (REST, over httpx).

The secret comes from the server's answer and stays in memory: it is burned, checked and
forgotten, never written to disk.
"""

from __future__ import annotations

from typing import Any, cast

import httpx

from keyfob.burn.errors import EnrollError


class EnrollClient:
    """The three calls a burn needs: begin a ``programmable`` enrolment (the server makes the
    secret), verify it with the code the token shows, or cancel it when the burn fails."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        if api_key:
            auth: Any = None
            headers = {"Authorization": f"Bearer {api_key}"}
        elif username and password is not None:
            auth, headers = (username, password), {}
        else:
            raise EnrollError(
                "enrolling needs credentials",
                hint="give an admin --api-key, or the user's --password",
            )
        # for messages: a user:password@ in the URL stays out of them
        self.url = str(httpx.URL(url).copy_with(userinfo=b"")).rstrip("/")
        self.client = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, auth=auth, timeout=timeout
        )

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise EnrollError(
                f"cannot reach the keyfob server: {exc}",
                hint="check --enroll URL and that the server runs",
            ) from None
        if resp.status_code >= 400:
            raise _refusal(resp)
        return resp.json() if resp.content else None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # the server's JSON object (Any from httpx); flow.py checks each field it reads
        return cast(dict[str, Any], self._call("POST", path, json=body))

    def begin(
        self, user: str, label: str = "Hardware token", *, period: int = 30, algorithm: str = "SHA1"
    ) -> dict[str, Any]:
        return self._post(
            f"/api/v1/users/{user}/tokens",
            {"kind": "programmable", "label": label, "period": period, "algorithm": algorithm},
        )

    def verify(self, user: str, token_id: str, code: str, serial: str) -> dict[str, Any]:
        return self._post(
            f"/api/v1/users/{user}/tokens/{token_id}/verify", {"code": code, "serial": serial}
        )

    def cancel(self, user: str, token_id: str) -> bool:
        """Best effort, and never raises a server error: the burn's own error is the one to
        report, and a pending enrolment also expires by itself. True when it is gone."""
        try:
            self._call("DELETE", f"/api/v1/users/{user}/tokens/{token_id}")
        except EnrollError:
            return False
        return True

    def close(self) -> None:
        self.client.close()


def _refusal(resp: httpx.Response) -> EnrollError:
    """The server's own message and hint when it sent its error shape, else the status."""
    try:
        err = resp.json()["error"]
        message, hint, code = str(err["message"]), err.get("hint"), err.get("code")
    except (ValueError, KeyError, TypeError):
        return EnrollError(f"server answered HTTP {resp.status_code}", status=resp.status_code)
    return EnrollError(f"server: {message}", hint=hint, status=resp.status_code, server_code=code)
