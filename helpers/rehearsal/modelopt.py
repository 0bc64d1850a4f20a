"""ModelOpt 0.35.1: Minitron pruning of Megatron's local layer spec, whose norms are torch's RMSNorm."""

from __future__ import annotations

import torch


def minitron_knows_rmsnorm() -> None:
    """Megatron's local spec normalises with `torch.nn.RMSNorm`, which ModelOpt cannot make dynamic.

    modelopt/torch/nas/plugins/megatron.py:670 converts each layer's norms through the registry,
    which knows LayerNorm, FusedLayerNorm and TE norms only: "KeyError: <class
    'torch.nn.modules.normalization.RMSNorm'> is not registered for a dynamic module!".
    Registered here as ModelOpt's dynamic LayerNorm without a bias.
    """
    from modelopt.torch.nas.modules import _DynamicLayerNorm
    from modelopt.torch.nas.registry import DMRegistry
    from modelopt.torch.nas.traced_hp import TracedHp

    if torch.nn.RMSNorm in DMRegistry:
        return

    class _DynamicRMSNorm(_DynamicLayerNorm):
        def _setup(self):
            shape = list(self.normalized_shape)
            self._register_hparam("num_features", TracedHp(list(range(1, shape[-1] + 1))))
            self._register_dynamic_attribute("weight", self._cut_to_active_features)
            self._register_dynamic_attribute("normalized_shape", self._get_normalized_shape)

    DMRegistry.register({torch.nn.RMSNorm: "torch.nn.RMSNorm"})(_DynamicRMSNorm)
