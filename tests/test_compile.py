"""``--compile``: each model's forward (and loss) must compile into ONE graph. A graph break
(e.g. reading a tensor back with ``int(x.max())`` for a bad-input check) splits it, costs speed,
and with torch 2.13 on the CPU has crashed the compiled backward outright."""

from __future__ import annotations

import copy

import pytest
import torch

from minimod.models.bert import BERTConfig, BERTForMaskedLM
from minimod.models.cnn import AudioCNN, AudioCNNConfig, ResNet, ResNetConfig
from minimod.models.gpt import GPT, GPTConfig

pytestmark = [pytest.mark.reference_only, pytest.mark.slow]


def graph_breaks(fn, *args) -> int:
    torch._dynamo.reset()
    return torch._dynamo.explain(fn)(*args).graph_break_count


def test_gpt_forward_and_loss_compile_without_graph_breaks():
    model = GPT(GPTConfig(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=8))
    idx = torch.randint(0, 17, (2, 8))
    assert graph_breaks(model.forward, idx, idx) == 0


def test_bert_forward_and_loss_compile_without_graph_breaks():
    config = BERTConfig(
        vocab_size=20,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=8,
    )
    model = BERTForMaskedLM(config)
    ids = torch.randint(0, 20, (2, 8))
    labels = torch.full((2, 8), -100)
    labels[:, 2] = 3
    assert graph_breaks(model.forward, ids, torch.ones(2, 8, dtype=torch.long), None, labels) == 0


def test_cnns_compile_without_graph_breaks():
    resnet = ResNet(ResNetConfig(in_channels=3, num_classes=4, widths=(4, 8), depths=(1, 1)))
    assert graph_breaks(resnet.forward, torch.randn(2, 3, 8, 8)) == 0
    audio = AudioCNN(AudioCNNConfig(n_features=5, num_classes=3, widths=(4, 4)))
    assert graph_breaks(audio.forward, torch.randn(2, 10, 5)) == 0


def test_compiled_forward_and_backward_match_eager():
    """A compiled training step (forward AND backward) gives eager's gradients, for a model with
    biased Linear layers (an extern addmm in the compiled graph) and for the conv Function; and
    torch's check_custom_op_aliasing is as it was after the calls."""
    from minimod.train.loop import compile_forward

    torch.manual_seed(0)
    config = BERTConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)  # fmt: skip
    eager = BERTForMaskedLM(config)
    compiled = compile_forward(copy.deepcopy(eager))
    ids = torch.randint(5, 40, (2, 8), generator=torch.Generator().manual_seed(1))
    for model in (eager, compiled):
        model(ids, None, None, ids)[1].backward()
    # The aliasing check is off during the compiled calls only, not for the whole process.
    assert torch._functorch.config.check_custom_op_aliasing is True
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_batch_norm_compiles_with_dynamic_shapes():
    """torch.compile(dynamic=True) traces a module's ints as symbols, and `in` compares those
    by identity: BatchNorm2d's input check (`dim in (4,)`) refused a 4-D input there."""
    from minimod.nn import BatchNorm2d

    torch._dynamo.reset()
    layer = BatchNorm2d(3)
    compiled = torch.compile(layer.forward, dynamic=True)
    for shape in ((2, 3, 4, 4), (5, 3, 2, 3)):
        x = torch.randn(shape)
        torch.testing.assert_close(compiled(x), BatchNorm2d(3)(x))
    with pytest.raises(ValueError, match="expected a 4-D input"):
        compiled(torch.randn(2, 3, 4))
