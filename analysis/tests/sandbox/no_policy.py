"""Kept for suites that still name this module: the no-policy stand-in lives in analysis.sandbox.no_policy."""

from analysis.sandbox.no_policy import NOTHING, harden_libraries, restricted_run

__all__ = ["NOTHING", "harden_libraries", "restricted_run"]
