"""STFDCNN checkpoints: the network of a checkpoint and its :class:`Predictor`.

They live here, not beside the network in ``dl/networks/stfdcnn.py``: network modules import
nothing else from ``stfusion.dl`` (``dl.checkpoint`` imports the networks registry, so a
network importing it made a cycle).
"""

from __future__ import annotations

from typing import Any

import torch

from stfusion.dl.checkpoint import Checkpoint, load_weights
from stfusion.dl.infer import Predictor
from stfusion.dl.networks.stfdcnn import STFDCNNNet


def load_network(checkpoint: Checkpoint, state: str = "best") -> Any:
    """The network of an STFDCNN checkpoint (best or ``last`` weights), in eval mode."""
    data = checkpoint.data
    sd = data["state_dict"] if state == "best" else data["resume"]["state_dict"]
    if checkpoint.agnostic:
        from stfusion.dl.networks.agnostic import AgnosticNet

        wrapped = AgnosticNet(STFDCNNNet.from_config(data["network"]))
        load_weights(wrapped, sd, checkpoint.path)
        return wrapped.eval()
    net = STFDCNNNet.from_config(data["network"])
    load_weights(net, sd, checkpoint.path)
    # HPM must use the statistics the Predictor normalises with (the same in trained
    # checkpoints; a generic random_checkpoint leaves the buffers at 0 / 1).
    net.norm_mean.copy_(torch.as_tensor(checkpoint.mean))
    net.norm_std.copy_(torch.as_tensor(checkpoint.std))
    return net.eval()


class STFDCNNPredictor(Predictor):
    """:class:`stfusion.dl.infer.Predictor` for STFDCNN checkpoints, building the network
    from its stored config (``factor``, ``window``) without the network registry."""

    def _network(self, ck: Checkpoint) -> Any:
        return load_network(ck)


__all__ = ["STFDCNNPredictor", "load_network"]
