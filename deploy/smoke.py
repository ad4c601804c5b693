"""Post-deploy smoke test: one generated photo through the deployed pipeline, end to end.

    python deploy/smoke.py --stack imgpipe-staging --region eu-west-1   # a deployed stack
    python deploy/smoke.py --base-url http://127.0.0.1:8080              # any imgpipe server

It uploads a generated JPEG, waits for ``processed``, fetches one of its renditions from the
URL the record gives (the CDN on AWS) with no Authorization header, deletes the image and
checks it is gone. Any other outcome exits 1 with the reason, so a deploy job fails.

With ``--stack`` it reads the stack's outputs. With ``AuthMode=COGNITO`` it signs in as a
throwaway user: created in the stack's user pool, signed in through the dashboard client with
``ADMIN_USER_PASSWORD_AUTH``, and deleted at the end, whatever happened. That needs AWS
credentials with the smoke-test rights of deploy/bootstrap.yaml's deploy roles.
"""

from __future__ import annotations

import argparse
import io
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from PIL import Image

_PROCESSING_TIMEOUT_S = 120


class SmokeFailed(Exception):
    """The deployment does not work; the message says where."""


def photo() -> bytes:
    """A 640 x 480 JPEG with structure (gradients and a disc), made here."""
    image = Image.radial_gradient("L").resize((640, 480)).convert("RGB")
    image.paste((200, 60, 40), (420, 120, 560, 260))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def run(base_url: str, headers: dict[str, str]) -> str:
    """The smoke test against ``base_url``; the processed image's id on success."""
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=30) as api:
        uploaded = api.post("/images", params={"filename": "smoke.jpg"}, content=photo(),
                            headers={"Content-Type": "image/jpeg"})  # fmt: skip
        if uploaded.status_code != 202:
            raise SmokeFailed(f"upload answered {uploaded.status_code}: {uploaded.text[:300]}")
        image_id = str(uploaded.json()["id"])
        try:
            record = _wait_processed(api, image_id)
            rendition = min(record["renditions"], key=lambda r: r["bytes"])
            url = httpx.URL(base_url).join(rendition["url"])
            fetched = httpx.get(url, timeout=30, follow_redirects=True)  # no Authorization
            if fetched.status_code != 200 or not fetched.content:
                raise SmokeFailed(f"rendition {url} answered {fetched.status_code}")
        finally:
            deleted = api.delete(f"/images/{image_id}")
        if deleted.status_code != 204:
            raise SmokeFailed(f"delete answered {deleted.status_code}: {deleted.text[:300]}")
        if (gone := api.get(f"/images/{image_id}")).status_code != 404:
            raise SmokeFailed(f"the deleted image still answers {gone.status_code}")
        return image_id


def _wait_processed(api: httpx.Client, image_id: str) -> dict[str, Any]:
    deadline, delay = time.monotonic() + _PROCESSING_TIMEOUT_S, 0.5
    while time.monotonic() < deadline:
        answer = api.get(f"/images/{image_id}")
        if answer.status_code != 200:
            raise SmokeFailed(f"GET /images/{image_id} answered {answer.status_code}")
        record: dict[str, Any] = answer.json()
        if record["status"] == "processed":
            return record
        if record["status"] in ("rejected", "failed"):
            raise SmokeFailed(f"the image ended {record['status']}: {record.get('error')}")
        time.sleep(delay)
        delay = min(delay * 1.5, 5)
    raise SmokeFailed(f"not processed within {_PROCESSING_TIMEOUT_S} s")


@contextmanager
def stack_access(stack: str, region: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The stack's base URL and the headers to call it with (a throwaway user's token)."""
    import boto3  # noqa: PLC0415 - only the --stack mode needs AWS

    described = boto3.client("cloudformation", region_name=region).describe_stacks(
        StackName=stack)["Stacks"][0]  # fmt: skip
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    base = outputs.get("CdnUrl") or outputs["ApiUrl"]
    pool = outputs.get("UserPoolId")
    if not pool:  # AuthMode NONE (IAM and JWT stacks need their own client)
        yield base, {}
        return
    cognito = boto3.client("cognito-idp", region_name=region)
    client_id = _dashboard_client(cognito, pool)
    username = f"smoke-{secrets.token_hex(6)}@example.invalid"
    password = f"Sm0ke-{secrets.token_urlsafe(18)}"
    cognito.admin_create_user(UserPoolId=pool, Username=username, MessageAction="SUPPRESS")
    try:
        cognito.admin_set_user_password(UserPoolId=pool, Username=username, Password=password,
                                        Permanent=True)  # fmt: skip
        tokens = cognito.admin_initiate_auth(
            UserPoolId=pool, ClientId=client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )["AuthenticationResult"]  # fmt: skip
        yield base, {"Authorization": f"Bearer {tokens['AccessToken']}"}
    finally:
        cognito.admin_delete_user(UserPoolId=pool, Username=username)


def _dashboard_client(cognito: Any, pool: str) -> str:
    clients = cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=60)["UserPoolClients"]
    found = [c["ClientId"] for c in clients if c["ClientName"] == "dashboard"]
    if not found:
        raise SmokeFailed(f"user pool {pool} has no 'dashboard' app client")
    return str(found[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="a deployed stack's name (reads its outputs)")
    where.add_argument("--base-url", help="an imgpipe server's URL")
    parser.add_argument("--region", help="the stack's region")
    parser.add_argument("--token", help="a bearer token for --base-url")
    args = parser.parse_args(argv)
    try:
        if args.stack:
            with stack_access(args.stack, args.region) as (base, headers):
                image_id = run(base, headers)
        else:
            headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
            image_id = run(args.base_url, headers)
    except (SmokeFailed, httpx.HTTPError) as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"smoke test passed: image {image_id} uploaded, processed, served and deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
