"""The SCF adapter: invoke a function asynchronously (``Invoke``, ``InvocationType=Event``).

One adapter serves both uses: the downstream notify (``CI_CALLBACK_NOTIFY_FUNCTION``) and
continuations (this same function, named by the SCF context's ``function_name`` and
``namespace``, else ``SCF_FUNCTIONNAME`` / ``SCF_NAMESPACE``). ``ClientContext`` becomes
the invoked function's event; async events are capped at 128 KB (SCF doc 583/11637,
quotas). Signed with the role's temporary keys and session token, at
``CI_CALLBACK_SCF_ENDPOINT`` when set. Uses the per-product packages
tencentcloud-sdk-python-scf and -common (not the 394 MB monolith), imported only when
an invoke actually happens.

``set_local_invoke`` replaces the API with a function in this process: the dev tools
(``ci-callback serve --local``, the demo, the benchmarks) run continuations that way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import NotifyError
from ..settings import Credentials, Settings

SCF_HOST = "scf.tencentcloudapi.com"
CLIENT_CONTEXT_LIMIT = 120 * 1024  # async events are capped at 128 KB
TIMEOUT_SECONDS = 5.0
MIN_START_SECONDS = 0.2  # an Invoke needs this much time left to be worth sending

# (function, namespace, qualifier, client_context) -> request id
LocalInvoke = Callable[[str, str, str | None, str], str | None]
_local: LocalInvoke | None = None


def set_local_invoke(invoke: LocalInvoke | None) -> None:
    """Send every invoke to INVOKE instead of the SCF API (None: back to the API)."""
    global _local
    _local = invoke


class Scf:
    def __init__(self, settings: Settings, credentials: Credentials | None, region: str | None,
                 deadline: float | None = None) -> None:
        self.settings = settings
        self.credentials = credentials
        self.region = region or settings.region or "ap-guangzhou"
        self.deadline = deadline

    def _timeout(self, function: str) -> float:
        """At most TIMEOUT_SECONDS, and never past the invocation's deadline."""
        if self.deadline is None:
            return TIMEOUT_SECONDS
        remaining = self.deadline - time.monotonic()
        if remaining < MIN_START_SECONDS:
            raise NotifyError(f"invoke {function}: no time left before the deadline", transient=True)
        return min(TIMEOUT_SECONDS, remaining)

    def _client(self, timeout: float) -> Any:
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.scf.v20180416 import scf_client

        if self.credentials is None:
            raise NotifyError("no credentials for the SCF call (TENCENTCLOUD_SECRETID/SECRETKEY unset)", transient=False)
        cred = credential.Credential(self.credentials.secret_id, self.credentials.secret_key, self.credentials.token)
        endpoint = self.settings.scf_endpoint
        if endpoint:
            # A local endpoint for tests. The SDK wants host:port without a scheme, and
            # reads the protocol only in HttpProfile's constructor.
            protocol = "https" if endpoint.startswith("https://") else "http"
            http = HttpProfile(protocol=protocol, endpoint=endpoint.split("://", 1)[-1].rstrip("/"), reqTimeout=timeout)
        else:
            http = HttpProfile(endpoint=SCF_HOST, reqTimeout=timeout)
        return scf_client.ScfClient(cred, self.region, ClientProfile(httpProfile=http))

    def invoke(self, function: str, payload: Mapping[str, Any], namespace: str | None = None,
               qualifier: str | None = None) -> str | None:
        """Fire-and-forget invoke; returns the API request id."""
        context = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(context.encode("utf-8")) > CLIENT_CONTEXT_LIMIT:
            # Too big for an async event: send the keys only, the receiver can read the index.
            slim = {k: v for k, v in payload.items() if k != "callback"}
            slim["callback"] = {k: payload.get("callback", {}).get(k) for k in ("kind", "event", "state", "job_id", "run_id", "tag")}
            context = json.dumps(slim, ensure_ascii=False, separators=(",", ":"), default=str)
        namespace = namespace or self.settings.notify_namespace
        if _local is not None:
            return _local(function, namespace, qualifier, context)
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.scf.v20180416 import models

        request = models.InvokeRequest()
        request.FunctionName = function
        request.InvocationType = "Event"
        request.Namespace = namespace
        if qualifier:
            request.Qualifier = qualifier
        request.ClientContext = context
        try:
            response = self._client(self._timeout(function)).Invoke(request)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or ""
            transient = code.startswith(("InternalError", "RequestLimitExceeded", "ClientNetworkError", "ResourceUnavailable"))
            raise NotifyError(f"invoke {function} failed: {code}", transient=transient) from None
        # Result.FunctionRequestId is the invoked function's own request id (doc 583/17244,
        # Result), the one its logs carry; the API's RequestId names only this Invoke call.
        function_request_id = getattr(getattr(response, "Result", None), "FunctionRequestId", None)
        return str(function_request_id or getattr(response, "RequestId", None) or "") or None


Notifier = Scf  # the name it had when it only notified
