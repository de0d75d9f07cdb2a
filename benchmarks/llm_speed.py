"""SmolLM2-135M-Instruct in minimod against transformers' LlamaForCausalLM on the same GGUF
weights and threads: prefill (a 128-token prompt read at once) and decode (32 greedy tokens
with the KV cache, after an 8-token prompt), in tokens per second. Needs `make real`.

    python benchmarks/llm_speed.py [--reps 3] [--threads N]     (or bench.py --models smollm2)

Calls alternate A/B in one process after a warm-up; the ratio is minimod's tokens/s over
transformers' (> 1: minimod is faster). Both decode the same tokens (checked).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from common import alternate, median

PROMPT_TOKENS, DECODE_PROMPT, NEW_TOKENS = 128, 8, 32


def run_smollm2(reps: int = 3) -> dict:
    import transformers

    from minimod.models.pretrained import smollm2_path
    from minimod.tasks.smollm2 import load_smollm2

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    path = Path(smollm2_path())
    print("... smollm2: loading minimod's and transformers' models", file=sys.stderr)
    ours, tokenizer = load_smollm2()
    # Dequantized by transformers to float32, like minimod's.
    theirs = transformers.LlamaForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    ).eval()
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    ids = torch.tensor([tokenizer.encode(text)[:PROMPT_TOKENS]])
    short = ids[:, :DECODE_PROMPT]
    out: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def prefill_ours() -> None:
        ours.lm_head(ours.hidden_states(ids)[:, -1])

    @torch.inference_mode()
    def prefill_theirs() -> None:
        theirs(ids, logits_to_keep=1)

    def decode_ours() -> None:
        out["ours"] = ours.generate(short, NEW_TOKENS, temperature=0.0)

    @torch.inference_mode()
    def decode_theirs() -> None:
        out["theirs"] = theirs.generate(
            short, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
            pad_token_id=tokenizer.special_ids.get("padding", 0),
        )  # fmt: skip

    for call in (prefill_ours, prefill_theirs, decode_ours, decode_theirs):  # warm-up
        call()
    prefill_a, prefill_b, prefill_ratio = alternate(prefill_ours, prefill_theirs, reps, "cpu")
    decode_a, decode_b, decode_ratio = alternate(decode_ours, decode_theirs, reps, "cpu")
    return dict(
        setup=f"SmolLM2-135M-Instruct (GGUF Q4_1 -> float32), B1, prefill {PROMPT_TOKENS} "
        f"tokens; decode {NEW_TOKENS} greedy tokens after {DECODE_PROMPT}",
        threads=torch.get_num_threads(),
        prefill_tokens_per_s=PROMPT_TOKENS / median(prefill_a),
        prefill_tokens_per_s_transformers=PROMPT_TOKENS / median(prefill_b),
        prefill_speed_ratio=1.0 / median(prefill_ratio),
        decode_tokens_per_s=NEW_TOKENS / median(decode_a),
        decode_tokens_per_s_transformers=NEW_TOKENS / median(decode_b),
        decode_speed_ratio=1.0 / median(decode_ratio),
        same_tokens=bool(torch.equal(out["ours"], out["theirs"])),
    )


def format_smollm2(row: dict) -> list[str]:
    return [
        f"SmolLM2 ({row['setup']}, {row['threads']} threads), tokens/s minimod vs transformers:",
        f"  prefill {row['prefill_tokens_per_s']:.0f} vs "
        f"{row['prefill_tokens_per_s_transformers']:.0f} ({row['prefill_speed_ratio']:.2f}x)",
        f"  decode  {row['decode_tokens_per_s']:.1f} vs "
        f"{row['decode_tokens_per_s_transformers']:.1f} ({row['decode_speed_ratio']:.2f}x); "
        f"same tokens: {row['same_tokens']}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="alternating pairs (default: 3)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print("\n".join(format_smollm2(run_smollm2(args.reps))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
