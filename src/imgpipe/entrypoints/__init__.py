"""The faces of imgpipe: the CLI, the local HTTP server and its workers, the Lambda handlers."""
