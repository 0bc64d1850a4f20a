"""The pruned students: target shapes on the weights themselves, cut where Minitron ranked lowest."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.models.checkpoints import architecture, is_hf_checkpoint, weight_shapes
from helpers.prune import importance


def test_depth_pruned_student_has_the_target_layers(profile, ws, require):
    teacher, student = architecture(require(ws.teacher, "01")), architecture(require(ws.pruned("depth"), "02"))
    assert student.as_dict() == {**teacher.as_dict(), "num_layers": profile.prune.depth_num_layers}
    shapes = weight_shapes(ws.pruned("depth"))
    layer_weights = [shape for name, shape in shapes.items() if name.startswith("decoder.layers.")]
    assert layer_weights and all(shape[0] == profile.prune.depth_num_layers for shape in layer_weights)


def test_width_pruned_student_has_the_target_widths(profile, ws, require):
    teacher = architecture(require(ws.teacher, "01"))
    hidden, ffn = profile.prune.width_hidden_size, profile.prune.width_ffn_hidden_size
    shapes = weight_shapes(require(ws.pruned("width"), "02"))
    qkv_rows = (teacher.num_attention_heads + 2 * teacher.num_query_groups) * teacher.head_dim
    layers = teacher.num_layers
    assert shapes["embedding.word_embeddings.weight"] == (teacher.vocab_size, hidden)
    assert shapes["output_layer.weight"] == (teacher.vocab_size, hidden)
    assert shapes["decoder.layers.mlp.linear_fc1.weight"] == (layers, 2 * ffn, hidden)  # gate and up projections
    assert shapes["decoder.layers.mlp.linear_fc2.weight"] == (layers, hidden, ffn)
    assert shapes["decoder.layers.self_attention.linear_qkv.weight"] == (layers, qkv_rows, hidden)
    assert shapes["decoder.layers.self_attention.linear_proj.weight"] == (layers, hidden, teacher.num_attention_heads * teacher.head_dim)
    assert shapes["decoder.final_layernorm.weight"] == (hidden,)


def test_depth_pruning_dropped_the_least_important_layers(profile, ws, require):
    scores = importance.load(require(ws.pruned("depth"), "02"))
    layers = scores["layers"]
    assert sorted(layers) == list(range(1, 7))
    lowest = sorted(sorted(layers, key=layers.get)[: 6 - profile.prune.depth_num_layers])
    assert scores["dropped_layers"] == lowest


def embedding(checkpoint):
    """The embedding matrix of a NeMo 2 or a Hugging Face checkpoint."""
    if is_hf_checkpoint(checkpoint):
        from safetensors import safe_open

        (file,) = [f for f in checkpoint.glob("*.safetensors") if "model.embed_tokens.weight" in safe_open(f, "pt").keys()]
        return safe_open(file, "pt").get_tensor("model.embed_tokens.weight").float().numpy()
    import torch.distributed.checkpoint as dcp

    key = "module.embedding.word_embeddings.weight"
    state = {key: torch.empty(weight_shapes(checkpoint)["embedding.word_embeddings.weight"])}
    dcp.load(state, checkpoint_id=str(checkpoint / "weights"), planner=dcp.DefaultLoadPlanner(allow_partial_load=True), no_dist=True)
    return state[key].numpy()


def test_width_pruning_kept_the_most_important_hidden_channels(profile, ws, require):
    scores = np.array(importance.load(require(ws.pruned("width"), "02"))["hidden_size"])
    teacher, student = embedding(ws.teacher)[:2000], embedding(ws.pruned("width"))[:2000]
    column = {tuple(np.round(teacher[:, j], 5)): j for j in range(teacher.shape[1])}
    kept = {column[tuple(np.round(student[:, j], 5))] for j in range(student.shape[1])}  # each is a teacher channel
    top = set(np.argsort(-scores)[: profile.prune.width_hidden_size].tolist())
    assert len(kept) == profile.prune.width_hidden_size and kept == top


def test_teacher_and_pruned_students_were_scored_on_the_same_windows(ws, require):
    """What each cut cost is judged in the notebook against the noise of these windows; on `tiny` it may be
    hundredths of a nat either way (a weak teacher), so the test asserts the measurement, not its sign."""
    report = json.loads(require(ws.results / "02-losses.json", "02").read_text())
    losses, per_window = report["loss"], report["loss per window"]
    assert set(losses) == set(per_window) == {"teacher", *(f"{kind}-pruned" for kind in ws.students)}
    assert {len(values) for values in per_window.values()} == {8} and report["tokens"] == 8 * 128
    assert all(np.mean(per_window[label]) == pytest.approx(losses[label], abs=1e-4) for label in losses)
    assert losses["teacher"] < np.log(151936) - 2  # the teacher learned something
    assert len({round(loss, 4) for loss in losses.values()}) == len(losses)  # each cut changed the predictions


def test_a_target_modelopt_cannot_honour_is_refused_before_loading(profile, ws, require, tmp_path, nemo2_only):
    save = tmp_path / "pruned"
    command = [sys.executable, "-m", "helpers.prune", "--devices", "1", "--restore_path", str(require(ws.teacher, "01")),
               "--save_path", str(save), "--seq_length", "128", "--mbs", "4", "--num_train_samples", "64",
               "--data_paths", str(ws.data_prefix("train")), "--target_ffn_hidden_size", "600"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "--target_ffn_hidden_size: 600 is not a multiple of 64" in result.stderr
    assert "use 576 or 640" in result.stderr and not save.exists()


def test_the_dry_runs_arithmetic_matches_the_real_checkpoints(profile, ws, require):
    """The parameter counts and student shapes the full-profile dry run derives, checked on the tiny run's weights."""
    from helpers import prune
    from helpers.models.checkpoints import parameter_counts
    from helpers.series import dry_run

    teacher = architecture(require(ws.teacher, "01"))
    for name, path in {"teacher": ws.teacher, "depth": ws.pruned("depth"), "width": ws.pruned("width")}.items():
        planned = teacher if name == "teacher" else dry_run.student(teacher, prune.targets(profile, name))
        assert architecture(require(path, "02")) == planned
        assert planned.parameter_counts(tied_embeddings=False) == parameter_counts(path)
