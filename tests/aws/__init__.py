"""The AWS adapters' own promises and ``build_aws``, against a moto server on 127.0.0.1."""
