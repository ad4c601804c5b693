"""A moto server on 127.0.0.1 that enforces IAM, taught the rules AWS has and moto lacks.

Run as a script (``aws_support.iam_account`` does, once per test process): it starts moto's
``ThreadedMotoServer`` on a free loopback port, creates an ``admin`` user (``*`` on ``*``) for
the tests' own setup, turns on moto's IAM check for every request after that
(``/moto-api/reset-auth`` to 0 - what ``INITIAL_NO_AUTH_ACTION_COUNT`` does at start-up), prints
one JSON line ``{"endpoint", "admin": {"key", "secret"}}`` and serves until its stdin closes -
so it stops with the process that started it, however that one ends.

moto checks a request's action against the caller's identity policies, but it authorises every
DynamoDB call against resource ``*`` and fails (HTTP 500) on a presigned S3 request, which has
no ``Authorization`` header. This server corrects both, as AWS documents them:

- DynamoDB: the resource is the table's ARN (``.../table/<name>``, ``/index/<index>`` for an
  index query); ``BatchGetItem`` / ``BatchWriteItem`` are checked on each table they name; and
  ``TransactWriteItems`` / ``TransactGetItems``, which have no IAM action of their own, are
  authorised as the actions inside them (``PutItem``, ``DeleteItem``, ``UpdateItem``,
  ``ConditionCheckItem``, ``GetItem``) on each item's table.
- CloudFront: the resource of a call on one distribution (``/distribution/<id>/...``) is its
  ARN, ``arn:aws:cloudfront::<account>:distribution/<id>``. (moto miscomputes the signature of
  CloudFront GETs, so those - the tests' own reads - are checked against the policy only.)
- EventBridge: ``PutEvents`` is authorised on each entry's bus ARN
  (``arn:aws:events:<region>:<account>:event-bus/<name>``, ``default`` when unnamed).
- Rekognition ``DetectFaces``, which moto does not have, answers like its ``DetectLabels`` does:
  a fixed reply whatever the image - one face (``FACE``, bottom left) - after the same IAM check
  as any action (``teach_moto`` adds it; ``aws_support``'s plain server calls it too).
- S3 presigned GETs and POST forms are authorised as their signer (the access key in
  ``X-Amz-Credential`` / the form's ``x-amz-credential``): a presigned URL carries exactly the
  signer's rights. The signature itself is not verified here.

What moto still does not check, and this server does not add: conditions in policies (moto
ignores ``StringLike`` and every operator but ``StringEquals``), resource policies (bucket and
queue policies), service-linked permissions, and ``PassRole``. tests/aws/test_template.py
checks those statements as data instead.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any
from urllib.parse import urlparse

import boto3
import urllib3
from moto import settings
from moto.cloudfront.responses import CloudFrontResponse
from moto.core.authorization import ActionAuthenticatorMixin
from moto.dynamodb.responses import DynamoHandler
from moto.events.responses import EventsHandler
from moto.iam.access_control import IAMPolicy, IAMRequest, PermissionResult, create_access_key
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.rekognition.responses import RekognitionResponse
from moto.s3.exceptions import S3AccessDeniedError
from moto.s3.responses import S3Response
from moto.utilities.utils import get_partition

REGION = "us-east-1"
# The one face DetectFaces finds on every image (fractions of the image, as Rekognition's are).
FACE = {"Width": 0.1, "Height": 0.2, "Left": 0.1, "Top": 0.55}
_INNER = {  # DynamoDB operations authorised as the actions inside them
    "TransactWriteItems": {"Put": "PutItem", "Delete": "DeleteItem", "Update": "UpdateItem",
                           "ConditionCheck": "ConditionCheckItem"},
    "TransactGetItems": {"Get": "GetItem"},
}  # fmt: skip


def _enforcing() -> bool:
    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def _check(handler: Any, action: str, resource: str, signature: bool = True) -> None:
    """moto's own check (signature, then the identity's policies) for ``action`` on
    ``resource``."""
    path, query = handler.raw_path, urlparse(handler.uri).query
    request = IAMRequest(account_id=handler.current_account, method=handler.method,
                         path=f"{path}?{query}" if query else path, data=handler.data,
                         body=handler.raw_body, headers=handler.headers,
                         action=action)  # fmt: skip
    if signature:
        request.check_signature()
    request.check_action_permitted(resource)


def _table_arn(handler: Any, table: str, index: str | None = None) -> str:
    arn = f"arn:{get_partition(handler.region)}:dynamodb:{handler.region}:" \
          f"{handler.current_account}:table/{table}"  # fmt: skip
    return f"{arn}/index/{index}" if index else arn


def _dynamodb_authorize(self: Any, resource: str = "*") -> None:
    if not _enforcing():
        ActionAuthenticatorMixin.request_count += 1
        return
    action = self._get_action()
    body = json.loads(self.raw_body or b"{}")
    if action in _INNER:
        for item in body.get("TransactItems", []):
            ((kind, inner),) = item.items()
            _check(self, _INNER[action][kind], _table_arn(self, inner["TableName"]))
    elif action in ("BatchGetItem", "BatchWriteItem"):
        for table in body.get("RequestItems", {}):
            _check(self, action, _table_arn(self, table))
    elif "TableName" in body:
        _check(self, action, _table_arn(self, body["TableName"], body.get("IndexName")))
    else:  # ListTables and the like: no resource
        _check(self, action, resource)


def _cloudfront_authorize(self: Any, resource: str = "*") -> None:
    if not _enforcing():
        ActionAuthenticatorMixin.request_count += 1
        return
    found = re.search(r"/distribution/([^/?]+)", self.raw_path)
    if found:
        resource = f"arn:{get_partition(self.region)}:cloudfront::{self.current_account}:" \
                   f"distribution/{found.group(1)}"  # fmt: skip
    # moto computes a different signature for every CloudFront GET (its bug, not the client's):
    # reads are checked against the policy only.
    _check(self, self._get_action(), resource, signature=self.method != "GET")


def _events_authorize(self: Any, resource: str = "*") -> None:
    if not _enforcing():
        ActionAuthenticatorMixin.request_count += 1
        return
    action = self._get_action()
    if action != "PutEvents":
        _check(self, action, resource)
        return
    prefix = f"arn:{get_partition(self.region)}:events:{self.region}:{self.current_account}"
    for entry in json.loads(self.raw_body or b"{}").get("Entries", []):
        bus = entry.get("EventBusName") or "default"
        _check(self, action, bus if bus.startswith("arn:") else f"{prefix}:event-bus/{bus}")


_s3_authorize_by_moto = S3Response._authenticate_and_authorize_s3_action


def _s3_authorize(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
    if "Authorization" in self.headers or not _enforcing():
        _s3_authorize_by_moto(self, bucket_name=bucket_name, key_name=key_name)
        return
    fields = {k.lower(): v for k, v in self.querystring.items()}
    credential = (fields.get("x-amz-credential") or [""])[0]
    if not credential:  # anonymous: moto's own path (ACLs, bucket policies)
        _s3_authorize_by_moto(self, bucket_name=bucket_name, key_name=key_name)
        return
    key = key_name or (fields.get("key") or [""])[0]  # a POST form names its key as a field
    resource = f"arn:{get_partition(self.region)}:s3:::{bucket_name}/{key}"
    signer = create_access_key(account_id=self.current_account, partition=get_partition(
        self.region), access_key_id=credential.split("/")[0], headers=self.headers)  # fmt: skip
    action = f"s3:{self.data['Action']}"
    results = [IAMPolicy(p).is_action_permitted(action, resource)
               for p in signer.collect_policies()]  # fmt: skip
    if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
        raise S3AccessDeniedError


def _detect_faces(self: Any) -> str:
    """DetectFaces' reply (the shape AWS documents), with ``FACE`` as the one face."""
    return json.dumps({"FaceDetails": [{
        "BoundingBox": FACE, "Confidence": 99.99,
        "Landmarks": [{"Type": "eyeLeft", "X": 0.13, "Y": 0.62}],
        "Pose": {"Roll": 0.0, "Yaw": 0.0, "Pitch": 0.0},
        "Quality": {"Brightness": 70.0, "Sharpness": 90.0}}]})  # fmt: skip


def teach_moto() -> None:
    """Give moto (in this process) what AWS has and it lacks: ``DetectFaces``."""
    RekognitionResponse.detect_faces = _detect_faces  # type: ignore[attr-defined]


def main() -> None:
    teach_moto()
    DynamoHandler._authenticate_and_authorize_normal_action = _dynamodb_authorize  # type: ignore[method-assign]
    S3Response._authenticate_and_authorize_s3_action = _s3_authorize  # type: ignore[method-assign]
    CloudFrontResponse._authenticate_and_authorize_normal_action = _cloudfront_authorize  # type: ignore[method-assign]
    EventsHandler._authenticate_and_authorize_normal_action = _events_authorize  # type: ignore[method-assign]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="setup", aws_secret_access_key="setup")  # fmt: skip
    iam.create_user(UserName="admin")
    iam.put_user_policy(UserName="admin", PolicyName="everything", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))  # fmt: skip
    admin = iam.create_access_key(UserName="admin")["AccessKey"]
    urllib3.request("POST", f"{endpoint}/moto-api/reset-auth", body=b"0")
    print(json.dumps({"endpoint": endpoint, "admin": {
        "key": admin["AccessKeyId"], "secret": admin["SecretAccessKey"]}}), flush=True)  # fmt: skip
    sys.stdin.read()  # until the parent closes the pipe or exits
    server.stop()


if __name__ == "__main__":
    main()
