"""The temporary upload flow (docs/contract.md §10): GET /api/v1/uploads?action=getPolicy and the
PostObject-style receiver at `upload_host`, which takes no API key: the signed policy is the
credential."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from vace_server.api.context import caller, ctx, request_id
from vace_server.api.upload_form import MALFORMED_FORM, BodyTooLarge, read_post_object
from vace_server.api.upload_policy import (
    MAX_FILE_BYTES,
    OSS_ACCESS_KEY_ID,
    UNKNOWN_ACCESS_KEY,
    EntityTooLarge,
    FileAlreadyExists,
    PolicySigner,
    UploadPolicy,
    check_key,
    policy_data,
)
from vace_server.api.validation import MODEL_NOT_EXIST_MESSAGE
from vace_server.clock import Clock, wall_clock_ms
from vace_server.errors import (
    AccessDenied,
    EmptyModel,
    InvalidParameter,
    field_invalid,
    field_required,
)
from vace_server.settings import Settings, reveal
from vace_server.storage.local import load_or_create_secret
from vace_server.storage.uploads import PartialUpload, UploadTooLarge
from vace_server.tasks.uploads import UploadExists, UploadStore

router = APIRouter()

POLICY_ROUTE = "/api/v1/uploads"
RECEIVE_ROUTE = "/api/v1/uploads/oss"
FORM_OVERHEAD_BYTES = 1024 * 1024  # the text fields and multipart framing around the file
# Form field -> the name reported when it is missing (field names are case-insensitive).
REQUIRED_FIELDS = {
    "ossaccesskeyid": "OSSAccessKeyId",
    "policy": "policy",
    "signature": "Signature",
    "key": "key",
}


@dataclass
class UploadService:
    """What both upload routes share; `app.state.uploads`."""

    store: UploadStore
    signer: PolicySigner
    upload_host: str
    clock: Clock = wall_clock_ms


def build_upload_service(settings: Settings, store: UploadStore) -> UploadService:
    secret = load_or_create_secret(
        settings.store.data_dir, reveal(settings.storage.url_signing_secret)
    )
    return UploadService(
        store=store,
        signer=PolicySigner(secret),
        upload_host=settings.resolved_public_base_url() + RECEIVE_ROUTE,
    )


def uploads(request: Request) -> UploadService:
    service: UploadService = request.app.state.uploads
    return service


@router.get(POLICY_ROUTE)
def get_policy(request: Request) -> dict[str, Any]:
    who = caller(request)
    ctx(request).limiter.check_query(who.account)
    params = request.query_params
    if params.get("action") != "getPolicy":
        raise field_invalid("action")
    model = params.get("model")
    if not model:
        raise EmptyModel()
    served = ctx(request).served
    if not served.accepts(model):
        raise InvalidParameter(MODEL_NOT_EXIST_MESSAGE)
    service = uploads(request)
    policy, token, signature = service.signer.issue(
        who.account, served.upload_model(model), now_ms=service.clock()
    )
    return {
        "request_id": request_id(request),
        "data": policy_data(token, signature, policy, service.upload_host),
    }


class _Receiver:
    """One upload: checks the fields when the file part starts, then owns the partial file."""

    def __init__(self, service: UploadService) -> None:
        self.service = service
        self.policy: UploadPolicy | None = None
        self.key = ""
        self.partial: PartialUpload | None = None

    def open(self, fields: Mapping[str, str]) -> PartialUpload:
        """Raises: InvalidParameter (missing field), AccessDenied (policy, signature, key)."""
        for name, label in REQUIRED_FIELDS.items():
            if not fields.get(name):
                raise field_required(label)
        if fields["ossaccesskeyid"] != OSS_ACCESS_KEY_ID:
            raise AccessDenied(UNKNOWN_ACCESS_KEY)
        service = self.service
        policy = service.signer.verify(
            fields["policy"], fields["signature"], now_ms=service.clock()
        )
        check_key(fields["key"], policy.upload_dir)
        self.policy, self.key = policy, fields["key"]
        self.partial = service.store.begin(policy.max_bytes)
        return self.partial

    def commit(self) -> None:
        """Raises: FileAlreadyExists."""
        assert self.partial is not None and self.policy is not None
        try:
            self.service.store.commit(
                self.partial, self.key, account=self.policy.account, model=self.policy.model
            )
        except UploadExists:
            raise FileAlreadyExists() from None

    def discard(self) -> None:
        if self.partial is not None:
            self.partial.discard()


@router.post(RECEIVE_ROUTE)
async def receive_upload(request: Request) -> Response:
    declared = request.headers.get("content-length", "").strip()
    limit = MAX_FILE_BYTES + FORM_OVERHEAD_BYTES
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise EntityTooLarge()
    receiver = _Receiver(uploads(request))
    try:
        _fields, complete = await read_post_object(
            request.stream(),
            request.headers.get("content-type", ""),
            receiver.open,
            max_body_bytes=limit,
        )
        if receiver.partial is None:
            raise field_required("file")
        if not complete:
            raise InvalidParameter(MALFORMED_FORM)
        await run_in_threadpool(receiver.commit)
    except (UploadTooLarge, BodyTooLarge):
        raise EntityTooLarge() from None
    finally:
        receiver.discard()
    # The SDK only looks at the status (success_action_status=200); OSS sends no body.
    return Response(status_code=200)
