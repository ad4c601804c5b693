"""ImageService.create_upload and the HMAC upload signer: a grant allows one object of one type
and size range until it expires, and nothing else."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace

import pytest

import fixtures as F
from imgpipe.adapters.local.upload_signer import SIGNATURE_FIELD, HmacUploadSigner, UploadGrant
from imgpipe.errors import TooLargeBytesError, UnsupportedTypeError, UploadPolicyError
from imgpipe.keys import raw_key
from imgpipe.settings import Limits, Settings
from imgpipe.testing import ManualClock

from .conftest import SECRET, UPLOAD_URL, MakePipeline, Pipeline

EXPIRY_S = 900
Tamper = Callable[[dict[str, str]], dict[str, str]]


@pytest.fixture
def signer(clock: ManualClock) -> HmacUploadSigner:
    return HmacUploadSigner(SECRET, UPLOAD_URL, clock=clock)


@pytest.fixture
def fields(signer: HmacUploadSigner) -> dict[str, str]:
    return signer.presign_post(raw_key("0" * 28), "image/jpeg", 1000, EXPIRY_S).fields


def _upload_through_grant(pipeline: Pipeline, fields: dict[str, str], data: bytes) -> None:
    """Do what the upload endpoint (S3, or the local server) does with a granted form."""
    grant = pipeline.signer.verify(fields)
    grant.check_size(len(data))
    pipeline.blobs.put(grant.key, data, grant.content_type)
    pipeline.service.object_created(grant.key)


# --- create_upload ---------------------------------------------------------------------------


def test_create_upload_grants_a_form_and_records_a_pending_image(pipeline: Pipeline) -> None:
    """The grant names the new image's raw key; the record waits, and nothing is stored yet."""
    ticket = pipeline.service.create_upload("../big.jpg", "image/jpeg", 10_000_000)

    assert ticket.upload.url == UPLOAD_URL
    assert ticket.upload.fields["key"] == raw_key(ticket.id)
    assert ticket.upload.fields["Content-Type"] == "image/jpeg"
    record = pipeline.records.get(ticket.id)
    assert record is not None
    assert record.status == "pending"
    assert (record.content_type, record.filename) == ("image/jpeg", "big.jpg")
    assert pipeline.blob_keys() == []
    assert pipeline.queue.receive(max_messages=10) == []


def test_create_upload_fields_verify_with_the_signer(pipeline: Pipeline) -> None:
    """The signer accepts its own grant: that key, that type, 1 byte up to the declared size."""
    ticket = pipeline.service.create_upload(None, "image/png", 123)
    grant = pipeline.signer.verify(ticket.upload.fields)

    assert (grant.key, grant.content_type) == (raw_key(ticket.id), "image/png")
    assert (grant.min_bytes, grant.max_bytes) == (1, 123)
    assert ticket.upload.expires_at == "1970-01-01T00:31:40Z"  # ManualClock 1000 s + 900 s


@pytest.mark.parametrize("content_type", ["image/svg+xml", "text/html", "application/pdf", ""])
def test_create_upload_refuses_unsupported_types(pipeline: Pipeline, content_type: str) -> None:
    """A declared type outside the accepted images is a 415 and grants nothing."""
    with pytest.raises(UnsupportedTypeError) as caught:
        pipeline.service.create_upload("x", content_type, 100)
    assert caught.value.http_status == 415
    assert pipeline.records.list().items == []


def test_create_upload_refuses_sizes_over_the_byte_limit(
    make_pipeline: MakePipeline, settings: Settings
) -> None:
    """A declared size over ``limits.max_bytes`` is a 413; exactly the limit is granted."""
    pipeline = make_pipeline(settings=replace(settings, limits=Limits(max_bytes=5000)))
    pipeline.service.create_upload("x.jpg", "image/jpeg", 5000)
    with pytest.raises(TooLargeBytesError) as caught:
        pipeline.service.create_upload("x.jpg", "image/jpeg", 5001)
    assert caught.value.http_status == 413
    assert len(pipeline.records.list().items) == 1


def test_an_object_uploaded_through_a_grant_is_processed(pipeline: Pipeline) -> None:
    """Storing the object and announcing it leads the granted image to ``processed``."""
    ticket = pipeline.service.create_upload("big.jpg", "image/jpeg", 1000)
    _upload_through_grant(pipeline, ticket.upload.fields, F.jpeg())

    pipeline.run_worker()
    record = pipeline.service.get(ticket.id)
    assert record.status == "processed"
    assert record.filename == "big.jpg"
    assert record.bytes == len(F.jpeg())


def test_granted_bytes_are_judged_by_content_not_by_the_declared_type(pipeline: Pipeline) -> None:
    """An SVG uploaded under an image/jpeg grant ends ``rejected`` as ``unsupported_type``."""
    ticket = pipeline.service.create_upload("x.jpg", "image/jpeg", 1000)
    _upload_through_grant(pipeline, ticket.upload.fields, F.svg())

    pipeline.run_worker()
    record = pipeline.service.get(ticket.id)
    assert record.status == "rejected"
    assert record.error is not None
    assert record.error["code"] == "unsupported_type"


# --- the signer ------------------------------------------------------------------------------


def test_verify_accepts_an_untouched_grant_until_it_expires(
    signer: HmacUploadSigner, fields: dict[str, str], clock: ManualClock
) -> None:
    """A grant verifies up to its expiry second and is refused one second later."""
    clock.advance(EXPIRY_S)
    assert signer.verify(fields).key == raw_key("0" * 28)
    clock.advance(1)
    with pytest.raises(UploadPolicyError, match="expired"):
        signer.verify(fields)


def _reencoded(fields: dict[str, str], max_bytes: int) -> str:
    policy = json.loads(base64.b64decode(fields["policy"]))
    policy["conditions"][2] = ["content-length-range", 1, max_bytes]
    return base64.b64encode(json.dumps(policy).encode()).decode()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda f: {**f, "policy": _reencoded(f, 10**12)}, id="policy-widened"),
        pytest.param(lambda f: {**f, SIGNATURE_FIELD: "0" * 64}, id="signature-replaced"),
        pytest.param(lambda f: {**f, "key": raw_key("1" * 28)}, id="other-key"),
        pytest.param(lambda f: {**f, "Content-Type": "image/png"}, id="other-content-type"),
        pytest.param(lambda f: {k: v for k, v in f.items() if k != "policy"}, id="no-policy"),
        pytest.param(
            lambda f: {k: v for k, v in f.items() if k != SIGNATURE_FIELD}, id="no-signature"
        ),
    ],
)
def test_verify_refuses_a_tampered_form(
    signer: HmacUploadSigner,
    fields: dict[str, str],
    tamper: Tamper,
) -> None:
    """Any change to the signed policy or to the fields it binds is an ``upload_policy`` 403."""
    with pytest.raises(UploadPolicyError) as caught:
        signer.verify(tamper(fields))
    assert caught.value.http_status == 403


def test_verify_refuses_a_grant_signed_with_another_key(
    fields: dict[str, str], clock: ManualClock
) -> None:
    """A server with a different secret does not honour the grant."""
    other = HmacUploadSigner(b"o" * 32, UPLOAD_URL, clock=clock)
    with pytest.raises(UploadPolicyError, match="signature"):
        other.verify(fields)


def test_signer_refuses_a_short_secret() -> None:
    """A secret under 32 bytes is a configuration error, not a weak signer."""
    with pytest.raises(ValueError, match="32 bytes"):
        HmacUploadSigner(b"short", UPLOAD_URL)


@pytest.mark.parametrize(
    ("size", "allowed"), [(0, False), (1, True), (500, True), (1000, True), (1001, False)]
)
def test_grant_check_size_enforces_the_policy_range(size: int, allowed: bool) -> None:
    """``check_size`` accepts exactly the sizes in [min_bytes, max_bytes]."""
    grant = UploadGrant(raw_key("0" * 28), "image/jpeg", 1, 1000)
    if allowed:
        grant.check_size(size)
    else:
        with pytest.raises(UploadPolicyError, match="outside"):
            grant.check_size(size)
