"""A real ``imgpipe serve`` over HTTP on 127.0.0.1, including fault tests."""
