"""template.yaml deployed by hand on the IAM-enforcing moto server, for the handlers' tests.

``deploy()`` makes what the functions touch from the template's own properties - the two
buckets (versioning, the raw bucket's S3 -> SQS notification), both queues (visibility,
retention, long polling, the redrive to the dead-letter queue), the table (keys, indexes,
billing, TTL) - and one IAM user per function role whose policy is **exactly** that role's
inline policy in the template, its ``Ref``/``GetAtt`` resolved to the resources made here.
A handler runs with its function's environment (``Deployed.environment``: the template's
Globals and function variables, resolved) and its role's keys, so a call the template does not
allow fails the test with AccessDenied, and a grant the code never uses is caught by
test_template's minimal-set test.

The CloudFront distribution is made (renditions bucket as its origin) for its id and domain.
With AuthMode COGNITO (the default) the user pool, its domain and the dashboard's client are
made too, so the API function reads the sign-in configuration the template gives it. What is
not made: the HTTP API and its authorizer (the tests hand the function the verified claims an
authorizer would), log groups, alarms (nothing calls them from the code: logs and
EMF metrics go to stdout) and the bucket and queue policies (resource policies, which moto's
IAM check ignores - see moto_iam_server).

The one deliberate difference: ``visibility_s`` shortens the jobs queue's visibility timeout
(the template's is 6 x the function timeout) so that retries happen within a test.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from cfn import NO_VALUE, Stack, create_table_arguments, load_template

__all__ = ["ACCOUNT", "REGION", "Deployed", "IamAccount", "deploy", "iam_account"]

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
_SERVER = Path(__file__).with_name("moto_iam_server.py")
_lock = threading.Lock()
_account: IamAccount | None = None


@dataclass(frozen=True)
class Keys:
    key: str
    secret: str


class IamAccount:
    """The IAM-enforcing moto server (a child process) and clients on it."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(_SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)  # fmt: skip
        assert self._process.stdout is not None
        started = json.loads(self._process.stdout.readline())
        self.endpoint: str = started["endpoint"]
        self.admin = Keys(started["admin"]["key"], started["admin"]["secret"])
        atexit.register(self.stop)

    def stop(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()  # the server exits when its stdin closes
        self._process.wait(timeout=10)

    def client(self, service: str, keys: Keys | None = None) -> Any:
        """A client of ``service`` signed with ``keys`` (default: the admin)."""
        keys = keys or self.admin
        settings = Config(retries={"mode": "standard", "total_max_attempts": 1},
                          signature_version="s3v4" if service == "s3" else None)  # fmt: skip
        session: Any = boto3.session.Session(
            aws_access_key_id=keys.key, aws_secret_access_key=keys.secret, region_name=REGION
        )
        return session.client(service, endpoint_url=self.endpoint, config=settings)


def iam_account() -> IamAccount:
    """The process's IAM-enforcing server, started on first use."""
    global _account  # noqa: PLW0603 - one per process, made on demand
    with _lock:
        if _account is None:
            _account = IamAccount()
        return _account


@dataclass
class Deployed:
    """What ``deploy`` made: the evaluated template, and a principal per function."""

    account: IamAccount
    stack: Stack
    keys: dict[str, Keys] = field(default_factory=dict)  # function logical id -> role's keys

    def role_of(self, function: str) -> str:
        role = self.stack.template["Resources"][function]["Properties"]["Role"]
        return str(role["Fn::GetAtt"][0])

    def policy(self, function: str) -> dict[str, Any]:
        """The function role's inline policy, resolved for this deployment (one document)."""
        role = self.stack.template["Resources"][self.role_of(function)]["Properties"]
        statements: list[Any] = []
        for policy in role["Policies"]:
            statements += self.stack.evaluate(policy["PolicyDocument"])["Statement"]
        unresolved = [s for s in statements if "<" in json.dumps(s)]
        assert not unresolved, f"{function}: the deployment has no value for {unresolved}"
        return {"Version": "2012-10-17", "Statement": statements}

    def environment(self, function: str) -> dict[str, str]:
        """The function's environment as Lambda sets it: the template's variables, resolved,
        plus its role's credentials, the region and the endpoint."""
        template = self.stack.template
        variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
        own = template["Resources"][function]["Properties"].get("Environment", {})
        variables.update(own.get("Variables", {}))
        resolved = {name: str(value) for name, value in self.stack.evaluate(variables).items()
                    if value is not NO_VALUE}  # fmt: skip
        keys = self.keys[function]
        return {**resolved, "AWS_ACCESS_KEY_ID": keys.key, "AWS_SECRET_ACCESS_KEY": keys.secret,
                "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": self.account.endpoint}  # fmt: skip

    def client(self, service: str, function: str | None = None) -> Any:
        """A client as ``function``'s role, or as the admin."""
        return self.account.client(service, self.keys[function] if function else None)

    def property(self, logical_id: str, name: str) -> Any:
        """One property of a resource, evaluated."""
        return self.stack.evaluate(self.stack.template["Resources"][logical_id]["Properties"][name])

    def ref(self, logical_id: str) -> str:
        return self.stack.resources[logical_id]

    def attribute(self, logical_id: str, name: str) -> str:
        return self.stack.resources[f"{logical_id}.{name}"]


def _props(stack: Stack, logical_id: str) -> dict[str, Any]:
    evaluated: dict[str, Any] = stack.evaluate(
        stack.template["Resources"][logical_id]["Properties"]
    )
    return evaluated


def _queue(deployed: Deployed, logical_id: str, overrides: dict[str, str]) -> None:
    sqs, stack = deployed.client("sqs"), deployed.stack
    props = _props(stack, logical_id)
    attributes: dict[str, str] = {name: str(props[name]) for name in (
        "VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
        "DelaySeconds", "MaximumMessageSize") if name in props}  # fmt: skip
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    attributes.update(overrides)
    name = f"{stack.pseudo['AWS::StackName']}-{logical_id}"
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    stack.resources[logical_id] = url
    stack.resources[f"{logical_id}.Arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    stack.resources[f"{logical_id}.QueueName"] = name


def _bucket(deployed: Deployed, logical_id: str) -> None:
    s3, stack = deployed.client("s3"), deployed.stack
    props = _props(stack, logical_id)
    name = props.get("BucketName") or f"{stack.pseudo['AWS::StackName']}-{logical_id.lower()}"
    s3.create_bucket(Bucket=name)
    stack.resources[logical_id] = name
    stack.resources[f"{logical_id}.Arn"] = f"arn:aws:s3:::{name}"
    if "VersioningConfiguration" in props:
        versioning = props["VersioningConfiguration"]
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=versioning)
    notifications = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
    if notifications:
        configurations = [
            {"QueueArn": c["Queue"], "Events": [c["Event"]],
             "Filter": {"Key": {"FilterRules": c["Filter"]["S3Key"]["Rules"]}}}
            for c in notifications
        ]  # fmt: skip
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"QueueConfigurations": configurations}
        )


def _table(deployed: Deployed, logical_id: str) -> None:
    dynamodb, stack = deployed.client("dynamodb"), deployed.stack
    name = f"{stack.pseudo['AWS::StackName']}-{logical_id}"
    dynamodb.create_table(**create_table_arguments(stack, logical_id, name))
    ttl = _props(stack, logical_id).get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    stack.resources[logical_id] = name
    stack.resources[f"{logical_id}.Arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def _event_bus(deployed: Deployed) -> None:
    events, stack = deployed.client("events"), deployed.stack
    name = stack.evaluate(_props(stack, "EventBus")["Name"])
    arn = events.create_event_bus(Name=name)["EventBusArn"]
    stack.resources["EventBus"], stack.resources["EventBus.Arn"] = name, arn


def _user_pool(deployed: Deployed) -> None:
    """AuthMode COGNITO: the pool, its hosted-UI domain and the dashboard's client."""
    stack = deployed.stack
    if not stack.exists("UserPool"):
        return
    cognito = deployed.client("cognito-idp")
    pool = _props(stack, "UserPool")
    pool_id = cognito.create_user_pool(PoolName=pool["UserPoolName"],
                                       UsernameAttributes=pool["UsernameAttributes"],
                                       AdminCreateUserConfig=pool["AdminCreateUserConfig"],
                                       )["UserPool"]["Id"]  # fmt: skip
    stack.resources["UserPool"] = pool_id
    domain = str(_props(stack, "HostedUiDomain")["Domain"])
    cognito.create_user_pool_domain(Domain=domain, UserPoolId=pool_id)
    stack.resources["HostedUiDomain"] = domain
    client = _props(stack, "DashboardClient")
    keys = ("ClientName", "GenerateSecret", "AllowedOAuthFlowsUserPoolClient", "AllowedOAuthFlows",
            "AllowedOAuthScopes", "SupportedIdentityProviders", "CallbackURLs", "LogoutURLs",
            "ExplicitAuthFlows")  # fmt: skip
    made = cognito.create_user_pool_client(UserPoolId=pool_id, **{k: client[k] for k in keys})
    stack.resources["DashboardClient"] = made["UserPoolClient"]["ClientId"]


def _cdn(deployed: Deployed) -> None:
    """The distribution, with the renditions bucket as its origin (moto serves nothing through
    it: the tests check the URLs records carry and the invalidations a delete makes)."""
    cloudfront, stack = deployed.client("cloudfront"), deployed.stack
    bucket = stack.resources["ProcessedBucket"]
    made = cloudfront.create_distribution(DistributionConfig={
        "CallerReference": stack.pseudo["AWS::StackName"], "Comment": "imgpipe", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "renditions", "DomainName": f"{bucket}.s3.{REGION}.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "renditions",
                                 "ViewerProtocolPolicy": "https-only",
                                 "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"},
    })["Distribution"]  # fmt: skip
    stack.resources["Cdn"] = made["Id"]
    stack.resources["Cdn.DomainName"] = made["DomainName"]


def _principals(deployed: Deployed) -> None:
    iam, stack = deployed.client("iam"), deployed.stack
    functions = [n for n, r in stack.template["Resources"].items()
                 if r["Type"] == "AWS::Serverless::Function"]  # fmt: skip
    for function in functions:
        user = f"{stack.pseudo['AWS::StackName']}-{function}"[:64]
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName=deployed.role_of(function),
                            PolicyDocument=json.dumps(deployed.policy(function)))  # fmt: skip
        made = iam.create_access_key(UserName=user)["AccessKey"]
        deployed.keys[function] = Keys(made["AccessKeyId"], made["SecretAccessKey"])


def _names(stack: Stack) -> None:
    """Values of the resources nothing here creates but policies and variables name."""
    name, resources = stack.pseudo["AWS::StackName"], stack.template["Resources"]
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Logs::LogGroup":
            group = stack.evaluate(resource["Properties"]["LogGroupName"])
            stack.resources[logical_id] = group
            stack.resources[f"{logical_id}.Arn"] = \
                f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"  # fmt: skip
        elif resource["Type"] == "AWS::Serverless::Function":
            stack.resources[logical_id] = f"{name}-{logical_id}"
    for name in ("CdnOriginAccess", "RenditionCachePolicy", "RenditionHeaders"):
        stack.resources[name] = f"{name}-id"
    stack.resources["HttpApi"] = "api0123456"
    stack.resources["HttpApi.ApiEndpoint"] = (
        "https://api0123456.execute-api.us-east-1.amazonaws.com"
    )


@contextmanager
def deploy(visibility_s: int | None = None, **parameters: str) -> Iterator[Deployed]:
    """A fresh deployment of template.yaml (with ``parameters``) on the IAM-enforcing server.

    Nothing is torn down: every deployment has its own stack name, and the server ends with
    the test process.
    """
    stack_id = uuid.uuid4()
    name = f"imgpipe-{stack_id.hex[:12]}"
    pseudo = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": name,
        "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{stack_id}",
    }
    stack = Stack(load_template(), resources={}, pseudo=pseudo, **parameters)
    deployed = Deployed(iam_account(), stack)
    _names(stack)
    _queue(deployed, "DeadLetterQueue", {})
    jobs = {"VisibilityTimeout": str(visibility_s)} if visibility_s is not None else {}
    _queue(deployed, "JobsQueue", jobs)
    _bucket(deployed, "RawBucket")
    _bucket(deployed, "ProcessedBucket")
    _table(deployed, "Table")
    _event_bus(deployed)
    _cdn(deployed)
    _user_pool(deployed)
    _principals(deployed)
    yield deployed
