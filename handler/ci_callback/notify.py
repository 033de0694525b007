"""Downstream notify: invoke another SCF function asynchronously (InvocationType=Event).

Uses the per-product packages tencentcloud-sdk-python-scf and -common (not the
394 MB monolith), imported only when a notify actually happens.
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping, Optional

from .errors import NotifyError
from .settings import Credentials, Settings

SCF_HOST = "scf.tencentcloudapi.com"
CLIENT_CONTEXT_LIMIT = 120 * 1024  # async events are capped at 128 KB


class Notifier:
    def __init__(self, settings: Settings, credentials: Optional[Credentials], region: Optional[str],
                 deadline: Optional[float] = None) -> None:
        self.settings = settings
        self.credentials = credentials
        self.region = region or settings.region or "ap-guangzhou"
        self.deadline = deadline

    def _timeout(self) -> int:
        """At most 5 s, and never past the invocation's deadline (the SDK takes whole seconds)."""
        if self.deadline is None:
            return 5
        return max(1, min(5, int(self.deadline - time.monotonic())))

    def _client(self) -> Any:
        from tencentcloud.common import credential  # noqa: PLC0415
        from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: PLC0415
        from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: PLC0415
        from tencentcloud.scf.v20180416 import scf_client  # noqa: PLC0415

        if self.credentials is None:
            raise NotifyError("no credentials for the notify call (TENCENTCLOUD_SECRETID/SECRETKEY unset)", False)
        cred = credential.Credential(self.credentials.secret_id, self.credentials.secret_key, self.credentials.token)
        endpoint = self.settings.scf_endpoint
        if endpoint:
            # A local endpoint for tests. The SDK wants host:port without a scheme, and
            # reads the protocol only in HttpProfile's constructor.
            protocol = "https" if endpoint.startswith("https://") else "http"
            http = HttpProfile(protocol=protocol, endpoint=endpoint.split("://", 1)[-1].rstrip("/"), reqTimeout=self._timeout())
        else:
            http = HttpProfile(endpoint=SCF_HOST, reqTimeout=self._timeout())
        return scf_client.ScfClient(cred, self.region, ClientProfile(httpProfile=http))

    def invoke(self, function: str, payload: Mapping[str, Any]) -> Optional[str]:
        """Fire-and-forget invoke; returns the API request id."""
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (  # noqa: PLC0415
            TencentCloudSDKException,
        )
        from tencentcloud.scf.v20180416 import models  # noqa: PLC0415

        context = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(context.encode("utf-8")) > CLIENT_CONTEXT_LIMIT:
            # Too big for an async event: send the keys only, the receiver can read the index.
            slim = {k: v for k, v in payload.items() if k != "callback"}
            slim["callback"] = {k: payload.get("callback", {}).get(k) for k in ("kind", "event", "state", "job_id", "run_id", "tag")}
            context = json.dumps(slim, ensure_ascii=False, separators=(",", ":"), default=str)
        request = models.InvokeRequest()
        request.FunctionName = function
        request.InvocationType = "Event"
        request.Namespace = self.settings.notify_namespace
        request.ClientContext = context
        try:
            response = self._client().Invoke(request)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or ""
            transient = code.startswith(("InternalError", "RequestLimitExceeded", "ClientNetworkError", "ResourceUnavailable"))
            raise NotifyError(f"notify {function} failed: {code}", transient) from None
        return getattr(response, "RequestId", None)
