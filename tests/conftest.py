"""Fixtures every test folder may use."""

pytest_plugins = ("tests.serve_process",)  # `serves`: serve subprocesses killed after a test
