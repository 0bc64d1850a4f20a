"""ModelOpt: Minitron pruning of Megatron's local layer spec, whose norms are torch's RMSNorm.

0.35.1 on the NeMo 2 route (`minitron_knows_rmsnorm`, in `rehearsal.WORKAROUNDS`); 0.43.0 on the Megatron-Bridge
route (`BRIDGE_WORKAROUNDS`, applied by `rehearsal.enable_bridge`).
"""

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


def minitron_drops_layers_on_cpu() -> None:
    """Without CUDA, let ModelOpt 0.43.0 drop layers (depth pruning, or named layers) with gloo.

    modelopt/torch/prune/plugins/mcore_minitron.py:145-146 move the per-stage layer counts to the GPU with
    `.cuda()` ("Torch not compiled with CUDA enabled"), and :147-149 gather a 0-d tensor with
    `all_gather_into_tensor`, which gloo refuses ("invalid tensor size"). Inside that module, `torch` is the CPU's
    (`rehearsal.pytorch`: 0-d gathers are sent as 1-d) and `.cuda()` keeps a tensor where it is.
    """
    from helpers.rehearsal import pytorch

    if torch.cuda.is_available():
        return
    pytorch._redirect_torch("modelopt.torch.prune.plugins.mcore_minitron")
    pytorch.tensor_cuda_is_identity()


def minitron_knows_rmsnorm_without_te() -> None:
    """Without Transformer Engine, Megatron's local spec normalises with `torch.nn.RMSNorm`, which ModelOpt 0.43.0
    cannot make dynamic either: modelopt/torch/nas/plugins/megatron.py:648, 652 and 1015 convert each norm through
    the registry ("KeyError: <class 'torch.nn.modules.normalization.RMSNorm'> is not registered for a dynamic
    module!"). Since 0.35.1 they hand the norm the model's `hidden_size` hparam (`num_features`) instead of letting
    it make its own, so it is registered here as the FusedLayerNorm of megatron.py:179-190 is, without a bias.
    """
    from modelopt.torch.nas.modules import _DynamicLayerNorm
    from modelopt.torch.nas.registry import DMRegistry

    from helpers.rehearsal.bridge import have_transformer_engine

    if have_transformer_engine() or torch.nn.RMSNorm in DMRegistry:
        return

    class _DynamicRMSNorm(_DynamicLayerNorm):
        def _setup(self, *, num_features):
            self._register_hparam("num_features", num_features)
            self._register_dynamic_attribute("weight", self._cut_to_active_features)
            self._register_dynamic_attribute("normalized_shape", self._get_normalized_shape)

    DMRegistry.register({torch.nn.RMSNorm: "torch.nn.RMSNorm"})(_DynamicRMSNorm)


BRIDGE_WORKAROUNDS = (minitron_knows_rmsnorm_without_te, minitron_drops_layers_on_cpu)
