"""Adapters for the AWS deployment: S3, DynamoDB, SQS and Rekognition, each over an injected
boto3 client.

Import each adapter from its own module (``s3_blob_store``, ``dynamodb_metadata_store``, ...);
this package deliberately re-exports nothing, and nothing here creates a client or touches the
network at import time: ``imgpipe.bootstrap.build_aws`` makes the clients and wires them.
"""
