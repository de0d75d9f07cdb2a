"""The implementation under test, chosen with ``pytest --impl minimod|solutions|exercises``.

Tests reach every definition through these namespaces -- ``impl.nn.Linear``, ``impl.F.gelu``,
``impl.optim.AdamW``, ``impl.gpt.GPT``, ``impl.cnn.ResNet``, ``impl.train.Trainer``,
``impl.checkpoint.save_checkpoint``, ``impl.metrics.macro_f1`` -- so the same property tests check
minimod, the generated solutions, or the learner's own exercise code. The reference twin is
always ``torch.nn`` / ``torch.optim``. ``impl.attention`` and ``impl.positional`` reach the
functions of those files that ``minimod.nn`` does not export (``causal_mask``, ``apply_rotary``,
...).
"""

import minimod.data.bpe
import minimod.data.chat
import minimod.data.masking
import minimod.data.spectral
import minimod.data.tts
import minimod.models.bert
import minimod.models.boxes
import minimod.models.cnn
import minimod.models.detection_metrics
import minimod.models.detector
import minimod.models.generation
import minimod.models.gpt
import minimod.models.heads
import minimod.models.llama
import minimod.models.mobilenet
import minimod.models.quantize
import minimod.models.tts
import minimod.nn
import minimod.nn.attention
import minimod.nn.conv
import minimod.nn.ctc
import minimod.nn.functional
import minimod.nn.init
import minimod.nn.lora
import minimod.nn.positional
import minimod.nn.recompute
import minimod.nn.rnn
import minimod.nn.utils
import minimod.optim
import minimod.optim.lr_scheduler
import minimod.train.checkpoint
import minimod.train.distributed
import minimod.train.error_rate
import minimod.train.freezing
import minimod.train.imbalance
import minimod.train.loop
import minimod.train.metrics
import minimod.train.precision
from minimod.workbook.implementations import Namespace

nn = Namespace(minimod.nn)
F = Namespace(minimod.nn.functional)
init = Namespace(minimod.nn.init)
utils = Namespace(minimod.nn.utils)
optim = Namespace(minimod.optim)
lr_scheduler = Namespace(minimod.optim.lr_scheduler)
attention = Namespace(minimod.nn.attention)
conv = Namespace(minimod.nn.conv)
positional = Namespace(minimod.nn.positional)
gpt = Namespace(minimod.models.gpt)
generation = Namespace(minimod.models.generation)
bert = Namespace(minimod.models.bert)
masking = Namespace(minimod.data.masking)
cnn = Namespace(minimod.models.cnn)
train = Namespace(minimod.train.loop)
checkpoint = Namespace(minimod.train.checkpoint)
metrics = Namespace(minimod.train.metrics)
heads = Namespace(minimod.models.heads)
boxes = Namespace(minimod.models.boxes)
detector = Namespace(minimod.models.detector)
mobilenet = Namespace(minimod.models.mobilenet)
detection_metrics = Namespace(minimod.models.detection_metrics)
freezing = Namespace(minimod.train.freezing)
imbalance = Namespace(minimod.train.imbalance)
lora = Namespace(minimod.nn.lora)
precision = Namespace(minimod.train.precision)
recompute = Namespace(minimod.nn.recompute)
distributed = Namespace(minimod.train.distributed)
rnn = Namespace(minimod.nn.rnn)
ctc = Namespace(minimod.nn.ctc)
error_rate = Namespace(minimod.train.error_rate)
spectral = Namespace(minimod.data.spectral)
tts = Namespace(minimod.models.tts)
tts_data = Namespace(minimod.data.tts)
quantize = Namespace(minimod.models.quantize)
llama = Namespace(minimod.models.llama)
bpe = Namespace(minimod.data.bpe)
chat = Namespace(minimod.data.chat)

NAMESPACES = (nn, F, init, utils, optim, lr_scheduler, attention, positional, gpt, bert, cnn)
NAMESPACES += (train, checkpoint, metrics, heads, freezing, imbalance, lora, precision, recompute)
NAMESPACES += (distributed, boxes, generation, masking)
NAMESPACES += (rnn, ctc, error_rate)
NAMESPACES += (spectral,)
NAMESPACES += (tts, tts_data)
NAMESPACES += (quantize,)
NAMESPACES += (llama, bpe, chat)
NAMESPACES += (detector, detection_metrics)
NAMESPACES += (conv, mobilenet)


def select(implementation: str) -> None:
    for namespace in NAMESPACES:
        namespace.implementation = implementation


def name() -> str:
    return nn.implementation
