"""template.yaml against the code it deploys: no drift between the stack and the handlers.

Handlers, environment variables, routes, IAM actions and the table's key design are read from
the code (``build_aws``'s ``AWS_ENV``, ``build_api``'s routes, ``dynamodb_table``'s indexes), never
copied into this file; the rules about queues, buckets and retention are the issue's.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from cfn import TEMPLATE, Stack, load_template
from imgpipe.adapters.aws import dynamodb_table
from imgpipe.adapters.local.upload_signer import HmacUploadSigner
from imgpipe.api.identity import OIDC_ENV
from imgpipe.api.routes import build_api
from imgpipe.bootstrap import AWS_ENV, CDN_ENV
from imgpipe.service import ImageService
from imgpipe.settings import Settings
from imgpipe.testing import FixedTagger, InMemoryBlobStore, InMemoryMetadataStore, InMemoryQueue

pytestmark = pytest.mark.aws

ROOT = TEMPLATE.parent
T = load_template()
RESOURCES: dict[str, Any] = T["Resources"]
DEFAULTS = Stack(T)
GLOBAL_FUNCTION = T["Globals"]["Function"]
FUNCTIONS = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
HANDLERS = {
    "ApiFunction": "imgpipe.entrypoints.lambda_api.handler",
    "ProcessorFunction": "imgpipe.entrypoints.lambda_processor.handler",
    "DeadLetterFunction": "imgpipe.entrypoints.lambda_dlq.handler",
}
LAMBDA_ZIP_LIMIT = 262_144_000  # bytes, unzipped, function and layers together


def _props(name: str) -> dict[str, Any]:
    return dict(RESOURCES[name]["Properties"])


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in RESOURCES.items() if r["Type"] == kind}


def _function(name: str, key: str) -> Any:
    """A function property, falling back to Globals like SAM does."""
    return _props(name).get(key, GLOBAL_FUNCTION.get(key))


def _environment(name: str) -> dict[str, Any]:
    merged = dict(GLOBAL_FUNCTION["Environment"]["Variables"])
    merged.update(_props(name).get("Environment", {}).get("Variables", {}))
    return merged


# -- handlers and packaging -----------------------------------------------------------------


def test_every_function_has_a_handler_that_imports_from_its_code_uri() -> None:
    """Each Handler names a callable in a module that lives under CodeUri (what Lambda loads)."""
    assert {name: _props(name)["Handler"] for name in FUNCTIONS} == HANDLERS
    for name, handler in HANDLERS.items():
        module_name, attribute = handler.rsplit(".", 1)
        code_uri = ROOT / _function(name, "CodeUri")
        source = code_uri / (module_name.replace(".", "/") + ".py")
        assert source.is_file(), source
        module = importlib.import_module(module_name)
        assert Path(inspect.getfile(module)).resolve() == source.resolve()
        function = getattr(module, attribute)
        assert callable(function)
        assert list(inspect.signature(function).parameters) == ["event", "context"]


def test_functions_run_python_3_12_or_3_13_on_arm64() -> None:
    """Runtime and architecture come from Globals and no function overrides them."""
    assert GLOBAL_FUNCTION["Runtime"] in {"python3.12", "python3.13"}
    assert GLOBAL_FUNCTION["Architectures"] == ["arm64"]
    for name in FUNCTIONS:
        assert "Runtime" not in _props(name)
        assert "Architectures" not in _props(name)


def _requirement_names(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        spec = line.split("#", 1)[0].strip()
        if spec:
            name = re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0].lower().replace("_", "-")
            found[name] = spec
    return found


def _export(variable: str) -> str:
    """What the Makefile's ``variable`` (a ``uv export`` command line) prints now."""
    uv = ROOT / ".venv-tools" / "uv" / "bin" / "uv"
    if not uv.exists():
        pytest.skip("uv is installed by make venv into .venv-tools/uv")
    command = re.search(rf"^{variable} := (.+?)(?<!\\)$", (ROOT / "Makefile").read_text(),
                        re.MULTILINE | re.DOTALL)  # fmt: skip
    assert command is not None, variable
    arguments = command.group(1).replace("\\\n", " ").replace("$(UV_BIN)", str(uv)).split()
    return subprocess.run(arguments, cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=120).stdout  # fmt: skip


def _pins(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith(("#", " "))]


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCAL_ONLY = {"click", "rich", "pebble", "uvicorn", "pyjwt", "httpx"}
IMAGING = set(_requirement_names(PYPROJECT["dependency-groups"]["imaging"]))
LAYERS = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::LayerVersion"}


def test_the_lambda_requirements_are_exactly_the_lock() -> None:
    """src/requirements.txt (every function's package) and the imaging layer's requirements
    are uv.lock's exports - pinned with hashes, so the artifact deployed is the one tested.
    Together they hold every runtime dependency and the aws extra, less the local server's and
    CLI's own packages; the imaging engine is in the layer only."""
    functions = (ROOT / GLOBAL_FUNCTION["CodeUri"] / "requirements.txt").read_text()
    layer = (ROOT / _props("ImagingLayer")["ContentUri"] / "requirements.txt").read_text()
    assert _pins(functions) == _pins(_export("LAMBDA_EXPORT")), "run make lock"
    assert _pins(layer) == _pins(_export("IMAGING_EXPORT")), "run make lock"
    in_functions, in_layer = (_requirement_names(_pins(t)) for t in (functions, layer))
    declared = _requirement_names(
        [
            *PYPROJECT["project"]["dependencies"],
            *PYPROJECT["project"]["optional-dependencies"]["aws"],
        ]
    )
    assert set(declared) >= IMAGING  # the group names project dependencies, nothing new
    assert set(declared) - LOCAL_ONLY - IMAGING <= set(in_functions)
    assert set(in_layer) >= IMAGING
    assert not IMAGING & set(in_functions)
    assert set(in_functions) & set(in_layer) == {"pillow"}  # pillow-heif's; pip wants it pinned
    assert in_functions["pillow"] == in_layer["pillow"]
    assert not LOCAL_ONLY & (set(in_functions) | set(in_layer))
    assert all("==" in spec for spec in [*in_functions.values(), *in_layer.values()])


def test_only_the_processor_carries_the_imaging_layer() -> None:
    """The layer is built like the functions (python3.12 on arm64) and only the processor,
    which renders, uses it."""
    assert set(LAYERS) == {"ImagingLayer"}
    layer = LAYERS["ImagingLayer"]
    runtime, (architecture,) = GLOBAL_FUNCTION["Runtime"], GLOBAL_FUNCTION["Architectures"]
    assert layer["Metadata"] == {"BuildMethod": runtime, "BuildArchitecture": architecture}
    assert layer["Properties"]["CompatibleRuntimes"] == [GLOBAL_FUNCTION["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == GLOBAL_FUNCTION["Architectures"]
    users = {name: _function(name, "Layers") for name in FUNCTIONS}
    assert users == {"ApiFunction": None, "ProcessorFunction": [{"Ref": "ImagingLayer"}],
                     "DeadLetterFunction": None}  # fmt: skip


# -- environment --------------------------------------------------------------------------


def test_environment_variables_are_exactly_the_ones_build_aws_reads() -> None:
    """Every function gets every IMGPIPE_* name build_aws reads, and no other IMGPIPE_* name."""
    for name in FUNCTIONS:
        names = {k for k in _environment(name) if k.startswith("IMGPIPE_")}
        api_only = set(OIDC_ENV) | set(CDN_ENV) if name == "ApiFunction" else set()
        assert names == set(AWS_ENV) | api_only, name


def test_environment_variables_point_at_the_stacks_resources() -> None:
    """The values are the stack's own buckets, table and queues; only the processor tags."""
    env = DEFAULTS.evaluate(_environment("ProcessorFunction"))
    assert env["IMGPIPE_RAW_BUCKET"] == "<RawBucket>"
    assert env["IMGPIPE_PROCESSED_BUCKET"] == "<ProcessedBucket>"
    assert env["IMGPIPE_TABLE"] == "<Table>"
    assert env["IMGPIPE_QUEUE_URL"] == "<JobsQueue>"  # Ref of a queue is its URL
    assert env["IMGPIPE_DLQ_URL"] == "<DeadLetterQueue>"
    assert env["IMGPIPE_TAGGER"] == DEFAULTS.parameters["Tagger"] == "rekognition"
    assert _environment("ApiFunction")["IMGPIPE_TAGGER"] == "none"
    assert _environment("DeadLetterFunction")["IMGPIPE_TAGGER"] == "none"
    assert DEFAULTS.evaluate(_environment("ApiFunction")["POWERTOOLS_TRACE_DISABLED"]) == "true"
    assert Stack(T, Tracing="Active").evaluate(
        _environment("ApiFunction")["POWERTOOLS_TRACE_DISABLED"]) == "false"  # fmt: skip


# -- the HTTP API ---------------------------------------------------------------------------


def _app_routes() -> set[tuple[str, str]]:
    """(method, path) of every route build_api registers, dashboard and docs included."""
    service = ImageService(InMemoryBlobStore(), InMemoryMetadataStore(), InMemoryQueue(),
                           FixedTagger(), HmacUploadSigner(b"k" * 32, "/_uploads"),
                           Settings())  # fmt: skip
    app = build_api(service)
    routes = {(m, re.sub(r"\{(\w+)\}", r"<\1>", r.path)) for r in app.routes
              if isinstance(r, Route) for m in (r.methods or ()) if m != "HEAD"}  # fmt: skip
    schema = app.openapi()["paths"]
    methods = ("get", "post", "put", "delete", "patch")
    documented = {(m.upper(), re.sub(r"\{(\w+)\}", r"<\1>", p))
                  for p, item in schema.items() for m in methods if m in item}  # fmt: skip
    assert documented <= routes
    return routes


def _selected_route(stack: Stack, method: str, path: str) -> dict[str, Any]:
    """The route API Gateway picks for a request: an exact "METHOD /path" key, else the
    longest greedy "METHOD /prefix/{proxy+}" key whose prefix the path extends, else
    $default."""
    routes = {p["RouteKey"]: p for n, r in _of_type("AWS::ApiGatewayV2::Route").items()
              if stack.exists(n) for p in [stack.evaluate(r["Properties"])]}  # fmt: skip
    exact: dict[str, Any] | None = routes.get(f"{method} {path}")
    if exact is not None:
        return exact
    greedy = [key for key in routes if key.startswith(f"{method} ") and key.endswith("/{proxy+}")
              and path.startswith(key[len(method) + 1 : -len("{proxy+}")])
              and len(path) > len(key) - len(method) - 1 - len("{proxy+}")]  # fmt: skip
    route: dict[str, Any] = routes[max(greedy, key=len)] if greedy else routes["$default"]
    return route


# The dashboard's page and files load without a token (the page must load to sign in);
# /dashboard/ (a redirect to /dashboard) is not among them: a greedy route needs a segment.
_OPEN = {("GET", "/health"), ("GET", "/"), ("GET", "/dashboard")}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("NONE", "NONE"), ("JWT", "JWT"), ("IAM", "AWS_IAM"), ("COGNITO", "JWT")],
)
def test_every_route_reaches_the_api_function_and_only_health_and_the_page_are_open(
    mode: str, expected: str
) -> None:
    """With each AuthMode, every route of the one definition is served by the API function,
    behind the chosen authorizer - except GET /health and the dashboard's page and files."""
    stack = Stack(T, AuthMode=mode, JwtIssuer="https://issuer.example", JwtAudience="client")
    integrations = {n: stack.evaluate(r["Properties"])
                    for n, r in _of_type("AWS::ApiGatewayV2::Integration").items()}  # fmt: skip
    assert integrations == {"ApiIntegration": {
        "ApiId": "<HttpApi>", "IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "2.0",
        "IntegrationUri": "<ApiFunction.Arn>", "TimeoutInMillis": 30000}}  # fmt: skip
    routes = _app_routes()
    assert ("GET", "/health") in routes
    assert {("GET", "/"), ("GET", "/docs"), ("GET", "/openapi.json")} <= routes
    assert ("GET", "/dashboard/<name>") in routes
    for method, path in routes:
        route = _selected_route(stack, method, path.replace("<name>", "app.js"))
        assert route["Target"] == "integrations/<ApiIntegration>"
        public = (method, path) in _OPEN or path == "/dashboard/<name>"
        assert route["AuthorizationType"] == ("NONE" if public else expected), (method, path)
        if expected == "JWT" and not public:
            assert route["AuthorizerId"] == "<JwtAuthorizer>"
    assert stack.exists("JwtAuthorizer") == (mode in ("JWT", "COGNITO"))
    # Every explicit route is one of the app's (nothing stale, nothing public by accident).
    keys = {r["Properties"]["RouteKey"] for r in _of_type("AWS::ApiGatewayV2::Route").values()}
    assert keys == {"$default", "GET /health", "GET /", "GET /dashboard", "GET /dashboard/{proxy+}"}


def test_the_jwt_authorizer_checks_the_stacks_user_pool_or_the_given_issuer() -> None:
    """COGNITO (the default): tokens of the stack's user pool for its dashboard client; with
    UserPoolId, that pool and UserPoolClientId; JWT: JwtIssuer for JwtAudience. Rules demand
    what each needs."""
    cognito = DEFAULTS.evaluate(_props("JwtAuthorizer"))
    assert cognito["AuthorizerType"] == "JWT"
    assert cognito["IdentitySource"] == ["$request.header.Authorization"]
    assert cognito["JwtConfiguration"] == {
        "Issuer": "https://cognito-idp.eu-west-1.amazonaws.com/<UserPool>",
        "Audience": ["<DashboardClient>"]}  # fmt: skip
    for name in ("UserPool", "HostedUiDomain", "DashboardClient"):
        assert DEFAULTS.exists(name)
    own = Stack(T, UserPoolId="eu-west-1_abc", UserPoolClientId="client1", UserPoolDomain="mine")
    assert own.evaluate(_props("JwtAuthorizer"))["JwtConfiguration"] == {
        "Issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
        "Audience": ["client1"]}  # fmt: skip
    assert not own.exists("UserPool")
    api_env = own.evaluate(_environment("ApiFunction"))
    assert api_env["IMGPIPE_OIDC_AUTHORIZE_URL"] == \
        "https://mine.auth.eu-west-1.amazoncognito.com/oauth2/authorize"  # fmt: skip
    jwt = Stack(T, AuthMode="JWT", JwtIssuer="https://issuer.example", JwtAudience="a,b")
    assert jwt.evaluate(_props("JwtAuthorizer"))["JwtConfiguration"] == {
        "Issuer": "https://issuer.example", "Audience": "a,b"}  # fmt: skip
    assert jwt.evaluate(_environment("ApiFunction"))["IMGPIPE_OIDC_ISSUER"] == ""
    rule = T["Rules"]["JwtNeedsIssuerAndAudience"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "JWT"]}
    assert len(rule["Assertions"]) == 2


def test_the_dashboard_client_is_public_code_flow_back_to_the_dashboard() -> None:
    """No secret (a browser cannot keep one), code flow only, the dashboard as callback and
    sign-out URL, admin-created users only, and a NONE stack says it is public."""
    client = DEFAULTS.evaluate(_props("DashboardClient"))
    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email", "profile"}
    assert client["CallbackURLs"] == client["LogoutURLs"] == [
        "https://<Cdn.DomainName>/dashboard", "<HttpApi.ApiEndpoint>/dashboard"]  # fmt: skip
    pool = DEFAULTS.evaluate(_props("UserPool"))
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    env = DEFAULTS.evaluate(_environment("ApiFunction"))
    domain = "https://<HostedUiDomain>.auth.eu-west-1.amazoncognito.com"
    assert env["IMGPIPE_OIDC_TOKEN_URL"] == f"{domain}/oauth2/token"
    assert env["IMGPIPE_OIDC_CLIENT_ID"] == "<DashboardClient>"
    outputs = T["Outputs"]
    assert outputs["Warning"]["Condition"] == "AuthNone"
    assert Stack(T, AuthMode="NONE").condition("AuthNone")
    assert not DEFAULTS.condition("AuthNone")


def test_renditions_come_from_the_cdn_through_origin_access_control() -> None:
    """/processed/* is the private bucket through OAC (HTTPS only, cached a year, keyed on the
    ?v= version alone, immutable Cache-Control); every other path is the API, uncached, with
    the viewer's headers; only this distribution may read the bucket; the raw bucket's CORS
    lets the CDN's origin post upload forms; Origin Shield is a parameter."""
    cdn = DEFAULTS.evaluate(_props("Cdn"))["DistributionConfig"]
    origins = {o["Id"]: o for o in cdn["Origins"]}
    assert origins["renditions"]["DomainName"] == "<ProcessedBucket.RegionalDomainName>"
    assert origins["renditions"]["OriginAccessControlId"] == "<CdnOriginAccess.Id>"
    assert "OriginShield" not in origins["renditions"]
    shielded = Stack(T, CdnOriginShield="true").evaluate(_props("Cdn"))["DistributionConfig"]
    assert shielded["Origins"][0]["OriginShield"]["Enabled"] is True
    assert origins["api"]["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    (renditions,) = cdn["CacheBehaviors"]
    assert (renditions["PathPattern"], renditions["TargetOriginId"]) == ("/processed/*",
                                                                         "renditions")  # fmt: skip
    assert renditions["ViewerProtocolPolicy"] == "https-only"
    assert renditions["AllowedMethods"] == ["GET", "HEAD"]
    assert cdn["DefaultCacheBehavior"]["TargetOriginId"] == "api"
    assert cdn["DefaultCacheBehavior"]["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    policy = DEFAULTS.evaluate(_props("RenditionCachePolicy"))["CachePolicyConfig"]
    keyed = policy["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"]
    assert keyed == {"QueryStringBehavior": "whitelist", "QueryStrings": ["v"]}
    assert policy["DefaultTTL"] == policy["MaxTTL"] == 365 * 24 * 3600
    headers = DEFAULTS.evaluate(_props("RenditionHeaders"))["ResponseHeadersPolicyConfig"]
    assert "immutable" in headers["CustomHeadersConfig"]["Items"][0]["Value"]
    statements = DEFAULTS.evaluate(_props("ProcessedBucketPolicy"))["PolicyDocument"]["Statement"]
    (oac,) = [st for st in statements if st["Effect"] == "Allow"]
    assert oac["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert (oac["Action"], oac["Resource"]) == ("s3:GetObject", RENDITIONS)
    assert oac["Condition"] == {"StringEquals": {
        "AWS:SourceArn": "arn:aws:cloudfront::123456789012:distribution/<Cdn>"}}  # fmt: skip
    cors = DEFAULTS.evaluate(_props("RawBucket"))["CorsConfiguration"]["CorsRules"][0]
    assert "https://<Cdn.DomainName>" in cors["AllowedOrigins"]
    env = DEFAULTS.evaluate(_environment("ApiFunction"))
    assert (env["IMGPIPE_CDN_URL"], env["IMGPIPE_CDN_DISTRIBUTION"]) == (
        "https://<Cdn.DomainName>", "<Cdn>")  # fmt: skip


def test_the_api_is_throttled_and_invocable_only_by_this_api() -> None:
    """Default route settings throttle every route; the invoke permission names this API."""
    stage = DEFAULTS.evaluate(_props("HttpApiStage"))
    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    assert int(stage["DefaultRouteSettings"]["ThrottlingRateLimit"]) > 0
    assert int(stage["DefaultRouteSettings"]["ThrottlingBurstLimit"]) > 0
    assert stage["AccessLogSettings"]["DestinationArn"] == "<ApiAccessLogGroup.Arn>"
    permission = DEFAULTS.evaluate(_props("ApiInvokePermission"))
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["FunctionName"] == "<ApiFunction>"
    assert permission["SourceArn"].endswith(":<HttpApi>/*")
    # HTTP APIs give up on an integration after 30 s: the function must finish first.
    assert _function("ApiFunction", "Timeout") < 30


# -- IAM --------------------------------------------------------------------------------------

RAW_OBJECTS = "<RawBucket.Arn>/raw/*"
RENDITIONS = "<ProcessedBucket.Arn>/processed/*"
TABLE, INDEXES = "<Table.Arn>", "<Table.Arn>/index/*"
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# The calls each function makes through the adapters (see their "Needs" docstrings), and
# nothing more. s3:GetObject also covers HeadObject; s3:ListBucket on the raw bucket makes a
# missing key a 404 rather than a 403.
EXPECTED_GRANTS: dict[str, set[tuple[str, str]]] = {
    "ApiRole": {
        *{(a, "<ApiLogGroup.Arn>") for a in LOGS},
        ("s3:PutObject", RAW_OBJECTS), ("s3:GetObject", RAW_OBJECTS),
        ("s3:DeleteObject", RAW_OBJECTS), ("s3:ListBucket", "<RawBucket.Arn>"),
        ("s3:GetObject", RENDITIONS), ("s3:DeleteObject", RENDITIONS),
        ("s3:ListBucket", "<ProcessedBucket.Arn>"),
        *{(f"dynamodb:{a}", r) for a in ("GetItem", "PutItem", "DeleteItem", "BatchGetItem",
                                         "Query") for r in (TABLE, INDEXES)},
        ("sqs:SendMessage", "<JobsQueue.Arn>"), ("sqs:GetQueueAttributes", "<JobsQueue.Arn>"),
        ("sqs:GetQueueAttributes", "<DeadLetterQueue.Arn>"),
        ("cloudfront:CreateInvalidation", "arn:aws:cloudfront::123456789012:distribution/<Cdn>"),
        ("events:PutEvents", "<EventBus.Arn>"),
    },
    "ProcessorRole": {
        *{(a, "<ProcessorLogGroup.Arn>") for a in LOGS},
        ("s3:GetObject", RAW_OBJECTS), ("s3:ListBucket", "<RawBucket.Arn>"),
        ("s3:PutObject", RENDITIONS), ("s3:GetObject", RENDITIONS),
        ("s3:DeleteObject", RENDITIONS), ("s3:ListBucket", "<ProcessedBucket.Arn>"),
        ("dynamodb:GetItem", TABLE), ("dynamodb:PutItem", TABLE), ("dynamodb:DeleteItem", TABLE),
        ("dynamodb:Query", "<Table.Arn>/index/processed_by_sha256"),
        ("dynamodb:Query", "<Table.Arn>"), ("dynamodb:BatchGetItem", "<Table.Arn>"),
        *{(f"sqs:{a}", "<JobsQueue.Arn>") for a in ("ReceiveMessage", "DeleteMessage",
                                                    "GetQueueAttributes")},
        ("rekognition:DetectLabels", "*"),
        ("events:PutEvents", "<EventBus.Arn>"),
    },
    "DeadLetterRole": {
        *{(a, "<DeadLetterLogGroup.Arn>") for a in LOGS},
        ("dynamodb:GetItem", TABLE), ("dynamodb:PutItem", TABLE),
        *{(f"sqs:{a}", "<DeadLetterQueue.Arn>") for a in ("ReceiveMessage", "DeleteMessage",
                                                          "GetQueueAttributes")},
        ("events:PutEvents", "<EventBus.Arn>"),
    },
}  # fmt: skip


def _grants(stack: Stack, role: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(action, resource, statement) for every Allow in the role's inline policies."""
    for policy in stack.evaluate(_props(role)["Policies"]):
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions, resources = statement["Action"], statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for resource in [resources] if isinstance(resources, str) else resources:
                    yield action, resource, statement


def test_each_function_has_its_own_role_with_only_inline_least_privilege_policies() -> None:
    """No SAM policy templates or managed policies: one role per function, written out."""
    roles = {name: DEFAULTS.evaluate(_props(name)["Role"]) for name in FUNCTIONS}
    assert roles == {"ApiFunction": "<ApiRole.Arn>", "ProcessorFunction": "<ProcessorRole.Arn>",
                     "DeadLetterFunction": "<DeadLetterRole.Arn>"}  # fmt: skip
    for name in FUNCTIONS:
        assert "Policies" not in _props(name)
    for role in EXPECTED_GRANTS:
        assert set(_props(role)) == {"AssumeRolePolicyDocument", "Policies"}
        trust = _props(role)["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                          "Action": "sts:AssumeRole"}]  # fmt: skip


def test_the_processors_table_query_reaches_only_the_phash_band_partitions() -> None:
    """The near-duplicate lookup may query the table, but only ``PHASH#`` partitions (moto does
    not evaluate conditions: this reads the template)."""
    conditions = [statement.get("Condition") for action, resource, statement
                  in _grants(DEFAULTS, "ProcessorRole")
                  if (action, resource) == ("dynamodb:Query", "<Table.Arn>")]  # fmt: skip
    assert conditions == [{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": "PHASH#*"}}]


@pytest.mark.parametrize("role", sorted(EXPECTED_GRANTS))
def test_iam_actions_are_the_minimal_set(role: str) -> None:
    """The role grants exactly the (action, resource) pairs its function's code needs."""
    granted = {(a, r) for a, r, _ in _grants(DEFAULTS, role)}
    assert granted == EXPECTED_GRANTS[role]


def test_no_wildcard_resources_on_storage_and_no_wildcard_actions() -> None:
    """S3, DynamoDB, SQS and logs are always named; ``*`` only where AWS allows nothing else."""
    everything = Stack(T, Tracing="Active", Faces="rekognition")
    for role in EXPECTED_GRANTS:
        for action, resource, statement in _grants(everything, role):
            assert "*" not in action
            if resource == "*":
                assert action in {"rekognition:DetectLabels", "rekognition:DetectFaces",
                                  "xray:PutTraceSegments",
                                  "xray:PutTelemetryRecords"}, (role, action)  # fmt: skip
            service = action.split(":")[0]
            if service == "s3" and action != "s3:ListBucket":
                assert resource.endswith(("/raw/*", "/processed/*")), (role, action, resource)
            if resource == "<ProcessedBucket.Arn>":
                assert statement["Condition"] == {"StringLike": {"s3:prefix": "processed/*"}}


def test_the_processor_never_writes_originals_and_tracing_adds_only_xray() -> None:
    """No write to raw/ from the processor (no recursion); Tracing=Active adds X-Ray only;
    without Rekognition the processor cannot call it."""
    processor = {(a, r) for a, r, _ in _grants(DEFAULTS, "ProcessorRole")}
    assert not {a for a, r in processor if r == RAW_OBJECTS} - {"s3:GetObject"}
    for role in EXPECTED_GRANTS:
        traced = {(a, r) for a, r, _ in _grants(Stack(T, Tracing="Active"), role)}
        base = {(a, r) for a, r, _ in _grants(DEFAULTS, role)}
        assert traced - base == {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
    local = {a for a, _, _ in _grants(Stack(T, Tagger="local"), "ProcessorRole")}
    assert "rekognition:DetectLabels" not in local


@pytest.mark.parametrize("tagger", ["rekognition", "local"])
def test_faces_rekognition_adds_detect_faces_to_the_processor_alone(tagger: str) -> None:
    """Faces=rekognition (off by default) grants the processor DetectFaces and tells it so
    (IMGPIPE_FACES); no other role or grant changes, and the Rekognition alarm is there even
    when the tagger is local."""
    faces = Stack(T, Tagger=tagger, Faces="rekognition")
    plain = Stack(T, Tagger=tagger)
    for role in EXPECTED_GRANTS:
        added = {(a, r) for a, r, _ in _grants(faces, role)} - {
            (a, r) for a, r, _ in _grants(plain, role)}  # fmt: skip
        assert added == ({("rekognition:DetectFaces", "*")} if role == "ProcessorRole" else set())
    assert faces.evaluate(_environment("ProcessorFunction"))["IMGPIPE_FACES"] == "rekognition"
    for name in FUNCTIONS:
        assert DEFAULTS.evaluate(_environment(name))["IMGPIPE_FACES"] == "none"
    assert faces.exists("RekognitionErrorsAlarm")


# -- queues -------------------------------------------------------------------------------------


def test_queue_visibility_covers_six_function_timeouts() -> None:
    """SQS trigger rule: a queue's visibility timeout is at least 6x its function's timeout."""
    pairs = {"JobsQueue": "ProcessorFunction", "DeadLetterQueue": "DeadLetterFunction"}
    for queue, function in pairs.items():
        assert _props(queue)["VisibilityTimeout"] >= 6 * _function(function, "Timeout")


def test_dead_letters_after_5_receives_kept_14_days() -> None:
    """Jobs redrive to the dead-letter queue after 5 receives (the local queue's number too);
    dead letters are kept 14 days, longer than jobs live."""
    jobs, dead = _props("JobsQueue"), _props("DeadLetterQueue")
    assert DEFAULTS.evaluate(jobs["RedrivePolicy"]) == {
        "deadLetterTargetArn": "<DeadLetterQueue.Arn>", "maxReceiveCount": 5}  # fmt: skip
    assert Settings().service.max_receives == 5
    assert dead["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert jobs["MessageRetentionPeriod"] < dead["MessageRetentionPeriod"]


def test_queues_use_sqs_managed_encryption() -> None:
    """SQS-managed SSE: a queue on alias/aws/sqs could not receive S3 notifications."""
    for name in ("JobsQueue", "DeadLetterQueue"):
        assert _props(name)["SqsManagedSseEnabled"] is True
        assert "KmsMasterKeyId" not in _props(name)


def test_the_triggers_report_batch_item_failures_within_the_concurrency_limits() -> None:
    """Both SQS triggers report partial failures; the processor's trigger never asks for more
    instances than its reserved concurrency."""
    triggers = {name: next(iter(_props(name)["Events"].values()))["Properties"]
                for name in ("ProcessorFunction", "DeadLetterFunction")}  # fmt: skip
    assert triggers["ProcessorFunction"]["Queue"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    assert triggers["DeadLetterFunction"]["Queue"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    for trigger in triggers.values():
        assert trigger["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    limit = triggers["ProcessorFunction"]["ScalingConfig"]["MaximumConcurrency"]
    assert limit == {"Ref": "ProcessorConcurrency"}


def test_no_function_reserves_concurrency_unless_asked() -> None:
    """Reserved concurrency must leave an account 10 unreserved executions, so any reservation
    fails to deploy on an account at the default quota of 10: by default no function reserves
    any (the trigger's MaximumConcurrency caps the processor); ProcessorReservedConcurrency
    opts in."""
    for name in FUNCTIONS:
        reserved = DEFAULTS.evaluate(_props(name)).get("ReservedConcurrentExecutions")
        assert reserved is None, name
    opted = Stack(T, ProcessorReservedConcurrency="20").evaluate(_props("ProcessorFunction"))
    assert opted["ReservedConcurrentExecutions"] == "20"


# Rules may use only these (CloudFormation's "Rule-specific intrinsic functions"); anything else,
# Fn::Join for one, fails at deploy time and not in cfn-lint.
_RULE_FUNCTIONS = {"Fn::And", "Fn::Contains", "Fn::EachMemberEquals", "Fn::EachMemberIn",
                   "Fn::Equals", "Fn::Not", "Fn::Or", "Fn::RefAll", "Fn::ValueOf",
                   "Fn::ValueOfAll", "Ref"}  # fmt: skip


def _functions_in(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _functions_in(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" or key.startswith("Fn::"):
                yield key
            yield from _functions_in(value)


def test_rules_use_only_rule_functions_and_hold_as_documented() -> None:
    """Every function inside Rules is a rule function; the JWT rule refuses a missing issuer
    or audience and accepts both given."""
    used = set(_functions_in(T["Rules"]))
    assert used <= _RULE_FUNCTIONS, used - _RULE_FUNCTIONS

    def holds(**parameters: Any) -> bool:
        stack = Stack(T, **parameters)
        rule = T["Rules"]["JwtNeedsIssuerAndAudience"]
        return not stack.evaluate(rule["RuleCondition"]) or all(
            stack.evaluate(a["Assert"]) for a in rule["Assertions"])  # fmt: skip

    assert holds()  # AuthMode IAM: the rule does not apply
    assert holds(AuthMode="JWT", JwtIssuer="https://issuer.example", JwtAudience="app,web")
    assert not holds(AuthMode="JWT", JwtIssuer="", JwtAudience="app")
    assert not holds(AuthMode="JWT", JwtIssuer="https://issuer.example", JwtAudience="")


# -- buckets and notifications ----------------------------------------------------------------


def test_buckets_block_public_access_are_encrypted_and_tls_only() -> None:
    """Every bucket: all four Block Public Access switches, default encryption, ACLs off, and
    a policy denying any request without TLS."""
    policies = {DEFAULTS.evaluate(r["Properties"]["Bucket"]): r["Properties"]["PolicyDocument"]
                for r in _of_type("AWS::S3::BucketPolicy").values()}  # fmt: skip
    for name in _of_type("AWS::S3::Bucket"):
        props = _props(name)
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
        assert len(props["PublicAccessBlockConfiguration"]) == 4
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        statements = DEFAULTS.evaluate(policies[f"<{name}>"])["Statement"]
        assert {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [f"<{name}.Arn>", f"<{name}.Arn>/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}} in statements  # fmt: skip


def test_raw_bucket_is_versioned_and_expires_deleted_originals() -> None:
    """Originals are versioned; a deleted one is gone for good after the retention parameter."""
    raw = _props("RawBucket")
    assert raw["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in raw["LifecycleConfiguration"]["Rules"]}
    expiry = rules["expire-deleted-originals"]
    assert expiry["Prefix"] == "raw/"
    assert expiry["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "DeletedOriginalRetentionDays"}}  # fmt: skip


def test_raw_bucket_notifies_the_jobs_queue_which_accepts_only_that_bucket() -> None:
    """ObjectCreated under raw/ goes to the jobs queue, whose policy lets S3 send only for the
    raw bucket of this account - a name fixed up front, so there is no dependency cycle."""
    raw = DEFAULTS.evaluate(_props("RawBucket"))
    assert raw["NotificationConfiguration"] == {"QueueConfigurations": [{
        "Event": "s3:ObjectCreated:*", "Queue": "<JobsQueue.Arn>",
        "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "raw/"}]}}}]}  # fmt: skip
    assert RESOURCES["RawBucket"]["DependsOn"] == "JobsQueuePolicy"
    policy = DEFAULTS.evaluate(_props("JobsQueuePolicy"))
    assert policy["Queues"] == ["<JobsQueue>"]
    allow = next(s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{raw['BucketName']}"},
        "StringEquals": {"aws:SourceAccount": "123456789012"}}  # fmt: skip
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", raw["BucketName"])


# -- table ---------------------------------------------------------------------------------------


def test_table_has_the_key_and_indexes_the_store_reads() -> None:
    """Keys and indexes are those ``dynamodb_table`` queries (string attributes, whole items
    projected), on demand, with point-in-time recovery and encryption. The tests create their
    tables from these very properties."""
    table = _props("Table")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert tuple(k["AttributeName"] for k in table["KeySchema"]) == dynamodb_table.KEY
    assert [k["KeyType"] for k in table["KeySchema"]] == ["HASH", "RANGE"]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert {name: tuple(k["AttributeName"] for k in i["KeySchema"])
            for name, i in indexes.items()} == dynamodb_table.INDEXES  # fmt: skip
    assert {i["Projection"]["ProjectionType"] for i in indexes.values()} == {"ALL"}
    keyed = {a for pair in (dynamodb_table.KEY, *dynamodb_table.INDEXES.values()) for a in pair}
    defined = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert defined == dict.fromkeys(keyed, "S")
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["TimeToLiveSpecification"] == {  # unused upload grants expire
        "AttributeName": dynamodb_table.EXPIRES, "Enabled": True}  # fmt: skip


def test_stateful_resources_are_retained() -> None:
    """Buckets, the table and the queues survive a stack deletion or replacement."""
    stateful = {**_of_type("AWS::S3::Bucket"), **_of_type("AWS::DynamoDB::Table"),
                **_of_type("AWS::SQS::Queue")}  # fmt: skip
    assert set(stateful) == {"RawBucket", "ProcessedBucket", "Table", "JobsQueue",
                             "DeadLetterQueue"}  # fmt: skip
    for resource in stateful.values():
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


# -- monitoring and outputs ------------------------------------------------------------------


def test_alarms_cover_dead_letters_backlog_errors_throttles_and_5xx() -> None:
    """Each alarm the issue asks for exists and notifies the SNS topic."""
    alarms = [DEFAULTS.evaluate(r["Properties"])
              for r in _of_type("AWS::CloudWatch::Alarm").values()]  # fmt: skip
    watched = {
        (a["Namespace"], a["MetricName"], tuple(d["Value"] for d in a["Dimensions"]))
        for a in alarms
        if "Namespace" in a
    }  # fmt: skip (metric-math alarms have none)
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
            ("<DeadLetterQueue.QueueName>",)) in watched  # fmt: skip
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", ("<JobsQueue.QueueName>",)) in watched
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, (f"<{function}>",)) in watched
    assert ("AWS/ApiGateway", "5xx", ("<HttpApi>", "$default")) in watched
    assert ("imgpipe", "DeadLetters", ("imgpipe", "imgpipe-test")) in watched  # service, stack
    for alarm in alarms:
        assert alarm["AlarmActions"] == ["<AlarmTopic>"]


def test_the_near_timeout_throttle_and_rekognition_alarms() -> None:
    """Processor duration over 80 % of its timeout, DynamoDB read and write throttles on the
    table, and (with the Rekognition tagger only) DetectLabels server errors and throttles."""
    alarms = {n: DEFAULTS.evaluate(r["Properties"])
              for n, r in _of_type("AWS::CloudWatch::Alarm").items()}  # fmt: skip
    near = alarms["ProcessorNearTimeoutAlarm"]
    assert (near["MetricName"], near["Statistic"]) == ("Duration", "Maximum")
    assert near["Threshold"] == 0.8 * _function("ProcessorFunction", "Timeout") * 1000
    for name, metric in (("TableReadThrottlesAlarm", "ReadThrottleEvents"),
                         ("TableWriteThrottlesAlarm", "WriteThrottleEvents")):  # fmt: skip
        assert (alarms[name]["Namespace"], alarms[name]["MetricName"]) == ("AWS/DynamoDB", metric)
        assert alarms[name]["Dimensions"] == [{"Name": "TableName", "Value": "<Table>"}]
    rekognition = alarms["RekognitionErrorsAlarm"]
    watched = {m["MetricStat"]["Metric"]["MetricName"]
               for m in rekognition["Metrics"] if "MetricStat" in m}  # fmt: skip
    assert watched == {"ServerErrorCount", "ThrottledCount"}
    operations = {d["Value"] for m in rekognition["Metrics"] if "MetricStat" in m
                  for d in m["MetricStat"]["Metric"]["Dimensions"]}  # fmt: skip
    assert operations == {"DetectLabels", "DetectFaces"}
    (expression,) = [m["Expression"] for m in rekognition["Metrics"] if "Expression" in m]
    for m in rekognition["Metrics"]:  # a gap in one series must not hide another's errors
        assert "MetricStat" not in m or f"FILL({m['Id']}, 0)" in expression
    assert RESOURCES["RekognitionErrorsAlarm"]["Condition"] == "UseAnyRekognition"
    assert DEFAULTS.exists("RekognitionErrorsAlarm")
    assert not Stack(T, Tagger="local").exists("RekognitionErrorsAlarm")


def _emitted_metric_names() -> set[str]:
    """Every metric name the functions' code emits (add_metric and single_metric calls)."""
    source = "".join((ROOT / "src/imgpipe/entrypoints" / f"{name}.py").read_text()
                     for name in ("lambda_processor", "lambda_dlq", "lambda_api"))  # fmt: skip
    return set(re.findall(r'add_metric\(name="(\w+)"', source)) | set(
        re.findall(r'single_metric\("(\w+)"', source)
    )


def test_the_dashboard_shows_the_stacks_own_metrics() -> None:
    """The dashboard body is JSON once substituted; its metrics of ours are ones the code
    emits, with the service and stack dimensions; the AWS ones name this stack's resources."""
    body = json.loads(DEFAULTS.evaluate(_props("Dashboard")["DashboardBody"]))
    lines = [line for widget in body["widgets"] for line in widget["properties"]["metrics"]]
    ours = {line[1] for line in lines if line[0] == "imgpipe"}
    assert ours <= _emitted_metric_names()
    assert {"ImagesProcessed", "ImagesFailed", "ProcessingMs", "DeadLetters"} <= ours
    for line in lines:
        if line[0] == "imgpipe":
            assert line[2:6] == ["service", "imgpipe", "stack", "imgpipe-test"], line
    named = {value for line in lines if isinstance(line[0], str) for value in line[2:]
             if isinstance(value, str) and value.startswith("<")}  # fmt: skip
    assert named == {"<HttpApi>", "<JobsQueue.QueueName>", "<DeadLetterQueue.QueueName>",
                     "<ProcessorFunction>", "<ApiFunction>", "<DeadLetterFunction>",
                     "<Table>"}  # fmt: skip
    searches = [line[0]["expression"] for line in lines if isinstance(line[0], dict)]
    assert searches
    assert all('stack="imgpipe-test"' in e for e in searches)


def test_every_function_logs_to_a_log_group_with_retention() -> None:
    """Logs go to the stack's log groups (retention set), which each role may write to."""
    groups = _of_type("AWS::Logs::LogGroup")
    for name in FUNCTIONS:
        group = DEFAULTS.evaluate(_props(name)["LoggingConfig"]["LogGroup"]).strip("<>")
        assert group in groups
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_outputs_name_the_api_url_buckets_table_and_queues() -> None:
    """The outputs the README and operators use."""
    assert {"ApiUrl", "RawBucket", "ProcessedBucket", "Table", "JobsQueue",
            "DeadLetterQueue"} <= set(T["Outputs"])  # fmt: skip
    assert DEFAULTS.evaluate(T["Outputs"]["ApiUrl"]["Value"]) == "<HttpApi.ApiEndpoint>"


# -- sam build ---------------------------------------------------------------------------------


def _python312() -> Path | None:
    found = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    if found:
        return found[-1]
    on_path = shutil.which("python3.12")
    return Path(on_path) if on_path else None


def _directory_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def sam_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make sam-build`` (sam build, then the bytecode) with Python 3.12; the build directory."""
    if not (ROOT / ".venv-tools" / "sam" / "bin" / "sam").exists():
        pytest.skip("the SAM CLI is not installed: `make tools` puts it in .venv-tools/sam")
    python = _python312()
    if python is None:
        pytest.skip("sam build needs python3.12 (the functions' runtime); none was found in "
                    "~/.pyenv/versions/3.12*/bin or on PATH")  # fmt: skip
    build = tmp_path_factory.mktemp("sam") / "build"
    environ = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}",
               "AWS_DEFAULT_REGION": "eu-west-1"}  # fmt: skip
    done = subprocess.run(
        ["make", "--no-print-directory", "sam-build", f"SAM_BUILD_DIR={build}"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return build


@pytest.mark.timeout(900)  # a cold build downloads every wheel
def test_sam_build_packages_every_handler_with_its_dependencies(sam_build: Path) -> None:
    """Each function's artifact holds our package and the libraries its handler imports; the
    imaging engine is in the processor's layer only, all of it built for arm64."""
    engine = ("pyvips", "pillow_heif", "_libvips.abi3.so")
    for name, handler in HANDLERS.items():
        artifact = sam_build / name
        module = handler.rsplit(".", 1)[0]
        assert (artifact / (module.replace(".", "/") + ".py")).is_file()
        for library in ("aws_lambda_powertools", "boto3", "PIL", "mangum"):
            assert (artifact / library).is_dir(), (name, library)
        assert not [e for e in engine if (artifact / e).exists()], name
        assert not (artifact / "click").exists()  # CLI-only dependencies stay out
    layer = sam_build / "ImagingLayer" / "python"  # Lambda puts /opt/python on the path
    assert all((layer / e).exists() for e in engine)
    assert not list(sam_build.rglob("numpy")), "the core hashes without NumPy: nothing ships it"
    machines = {_elf_machine(so) for so in (sam_build).rglob("*.so") if so.is_file()}
    assert machines == {"aarch64"}, machines
    built = load_template(sam_build / "template.yaml")
    for name in FUNCTIONS:
        assert built["Resources"][name]["Properties"]["CodeUri"] == name
    assert built["Resources"]["ImagingLayer"]["Properties"]["ContentUri"] == "ImagingLayer"


def _runtime_tag() -> str:
    """The bytecode tag of the functions' runtime: ``python3.12`` -> ``cpython-312``."""
    runtime: str = GLOBAL_FUNCTION["Runtime"]
    return "cpython-" + runtime.removeprefix("python").replace(".", "")


@pytest.mark.timeout(900)
def test_sam_build_ships_hash_based_bytecode_for_every_module(sam_build: Path) -> None:
    """Every module of every function and layer has its runtime's .pyc, validated by source hash
    (PEP 552, flags 0b11): /var/task is read-only, so a module without one is compiled again on
    each cold start, and SAM's zips date every file 1980, which no timestamp .pyc survives."""
    tag, checked_hash = _runtime_tag(), 0b11
    for artifact in [*FUNCTIONS, "ImagingLayer"]:
        sources = list((sam_build / artifact).rglob("*.py"))
        assert len(sources) > 100, artifact
        unusable = []
        for source in sources:
            pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            header = pyc.read_bytes()[:8] if pyc.is_file() else b""
            if int.from_bytes(header[4:8], "little") != checked_hash:
                unusable.append(source.relative_to(sam_build))
        assert not unusable, (artifact, len(unusable), unusable[:5])


@pytest.mark.timeout(900)
def test_a_handler_imports_its_bytecode_from_the_zip_sam_uploads(
    sam_build: Path, tmp_path: Path
) -> None:
    """The dead-letter function's package, zipped by SAM's own packager and unzipped with the
    zip's own dates (1980: whatever date Lambda gives the files, it is not the build's), imports
    every one of its modules from bytecode: none is compiled from source. (Its handler is pure
    Python, so the arm64 package imports here.)"""
    zipped = tmp_path / "DeadLetterFunction"
    packager = ("import sys; from samcli.lib.package.utils import make_zip; "
                "make_zip(sys.argv[1], sys.argv[2])")  # fmt: skip
    sam_python = ROOT / ".venv-tools" / "sam" / "bin" / "python"
    subprocess.run([str(sam_python), "-c", packager, str(zipped), str(sam_build / zipped.name)],
                   check=True, timeout=300)  # fmt: skip
    task = tmp_path / "task"
    with zipfile.ZipFile(zipped.with_suffix(".zip")) as archive:
        archive.extractall(task)
        for entry in archive.infolist():
            stamp = time.mktime((*entry.date_time, 0, 0, -1))
            os.utime(task / entry.filename, (stamp, stamp))
    python = _python312()
    assert python is not None  # the fixture skipped otherwise
    handler = HANDLERS["DeadLetterFunction"].rsplit(".", 1)[0]
    done = subprocess.run(
        [str(python), "-v", "-c", f"import {handler}"], cwd=task, capture_output=True, text=True,
        env={"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1",
             "POWERTOOLS_TRACE_DISABLED": "true"},
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    loaded = [line.rsplit(" ", 1)[1].strip("'") for line in done.stderr.splitlines()
              if line.startswith("# code object from ") and str(task) in line]  # fmt: skip
    assert len(loaded) > 50, done.stderr[-4000:]
    assert [path for path in loaded if not path.endswith(".pyc")] == []


def _elf_machine(path: Path) -> str:
    """The architecture an ELF shared object was built for (e_machine)."""
    header = path.read_bytes()[:20]
    return {0xB7: "aarch64", 0x3E: "x86_64"}.get(int.from_bytes(header[18:20], "little"), "other")


@pytest.mark.timeout(900)
def test_sam_build_fits_in_a_lambda_zip(sam_build: Path) -> None:
    """Each function with its layers is under Lambda's 250 MiB unzipped limit; the API
    function, which never decodes a pixel, carries none of the processor's imaging layer
    (measured with bytecode: 73 MB, the processor 133 MB with its 60 MB layer)."""
    layers = {"ProcessorFunction": _directory_bytes(sam_build / "ImagingLayer")}
    sizes = {name: _directory_bytes(sam_build / name) + layers.get(name, 0) for name in FUNCTIONS}
    assert max(sizes.values()) < LAMBDA_ZIP_LIMIT, sizes
    assert sizes["ApiFunction"] <= sizes["ProcessorFunction"] - layers["ProcessorFunction"], sizes
