"""`khpl-migrate verify` (the guide's status report) and `verify --deep` (every field and
every image byte, each difference's side named)."""

from khpl_migrate.verify.deep import deep_verify
from khpl_migrate.verify.model import DeepReport
from khpl_migrate.verify.status import VerifyReport, verify

__all__ = ["DeepReport", "VerifyReport", "deep_verify", "verify"]
