"""The deploy tests share storage's moto S3 server fixture."""

from storage.tests.conftest import moto_endpoint

__all__ = ["moto_endpoint"]
