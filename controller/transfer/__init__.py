"""Transfer to a human: the runner that rings agents one by one (see README.md)."""

from controller.transfer.events import EslEvents
from controller.transfer.runner import TransferResult, follow_bridge, run_transfer

__all__ = ["EslEvents", "TransferResult", "follow_bridge", "run_transfer"]
