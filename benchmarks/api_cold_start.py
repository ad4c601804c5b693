"""One cold start of the API function, run by ``startup.py`` in the interpreter under test.

Lambda's init phase imports the handler; the first event then builds the app (boto3 clients,
the ASGI app) and answers. Prints both durations in seconds: the import, and the first event
(``GET /health``, which reads the jobs queue's depth: one SQS call to ``AWS_ENDPOINT_URL``).
"""

import time
from typing import Any

started = time.perf_counter()
from imgpipe.entrypoints import lambda_api  # noqa: E402 - the import is what is timed

imported = time.perf_counter()
from imgpipe.testing import LambdaContext, to_v2_event  # noqa: E402

event = to_v2_event("GET", "/health", {}, b"")
context: Any = LambdaContext("ApiFunction", 512)  # duck-typed, as Lambda's own object is
ready = time.perf_counter()
response = lambda_api.handler(event, context)
answered = time.perf_counter()
if response["statusCode"] != 200:
    raise SystemExit(f"GET /health answered {response['statusCode']}: {response.get('body')}")
print(imported - started, answered - ready)
