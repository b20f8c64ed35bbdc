"""The ``flairlc demo`` pipeline and its report."""

from flairlc.demo.pipeline import FULL, QUICK, DemoSettings, run_demo

__all__ = ["FULL", "QUICK", "DemoSettings", "run_demo"]
