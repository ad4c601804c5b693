"""The HTTP API, defined once: served by the local server and by the Lambda function."""
