"""Write a tiny llama-architecture GGUF model that ignores its input, to check the ``llamacpp`` backend offline.

No model can be downloaded on the machines this project is tested on, so this file is the model
the ``llamacpp`` backend's test loads. It is not a language model: attention and feed-forward
weights are zero and every token embeds to the same vector, so the next-token logits are the
same fixed ranking at every position, highest for the lowest token id (<unk> and <s> aside).
Greedy decoding therefore picks the allowed token with the lowest id, and the vocabulary's order
(see ``FIRST``) makes the "model" answer every instruction, under the backend's grammar, with
the same one-step plan: ``navigate_to`` the place whose name ranks first in that order
(:func:`answer_place`). It stops (end of stream, id 2) as soon as the grammar lets it. What it
checks is the plumbing: llama-cpp-python loads a GGUF file, tokenizes the chat (English and
Chinese), decodes under the grammar built from the answer's JSON schema, and the answer is
parsed and validated.

Usage (needs ``pip install 'tianji[llamacpp]'``, which brings the ``gguf`` writer)::

    python experiments/planner/tiny_gguf.py /tmp/tiny.gguf
    tianji plan "bring her water" --planner llamacpp --model /tmp/tiny.gguf
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

import numpy as np

# The lowest allowed id wins. '"' first closes every free string at once; '{' before ']' puts one step in the
# list and ']' before ',' stops it there; 'n' and 'p' before the other letters make the outcome "plan" (not
# "clarify", "cannot" or "refuse") and the step's skill "navigate_to": the answer is a one-step plan that
# navigates to a place (answer_place), which a valid plan may do from anywhere.
FIRST = ['"', "{", "]", "}", ",", ":", "n", "p"]


def vocabulary() -> tuple[list[str], list[int]]:
    """SentencePiece-style vocabulary: <unk>, <s>, </s>, the printable ASCII characters, then 256 byte tokens."""
    from gguf import TokenType

    chars = FIRST + [c for c in string.printable if c not in FIRST and c not in " \t\n\r\x0b\x0c"] + ["\u2581"]
    tokens = ["<unk>", "<s>", "</s>", *chars, *(f"<0x{b:02X}>" for b in range(256))]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    types += [TokenType.NORMAL] * len(chars) + [TokenType.BYTE] * 256
    return tokens, [int(t) for t in types]


def answer_place(places: list[str]) -> str:
    """The place the tiny model's plan navigates to: the name its token ranking spells first."""
    tokens, _ = vocabulary()
    rank = {t: i for i, t in enumerate(tokens)}
    return min(places, key=lambda name: [rank.get(c, len(tokens)) for c in name] + [rank['"']])


def write_tiny_gguf(
    path: str | Path, *, n_embd: int = 64, n_head: int = 4, n_ff: int = 128, n_ctx: int = 32768
) -> Path:
    """Write the model to ``path`` (about 0.3 MB) and return the path."""
    import gguf

    path = Path(path)
    tokens, types = vocabulary()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tianji-tiny-zero")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    n_vocab = len(tokens)
    shapes = {  # numpy shapes (rows = output features), as the GGUF llama layout names them
        "token_embd.weight": (n_vocab, n_embd),
        "output_norm.weight": (n_embd,),
        "output.weight": (n_vocab, n_embd),
        "blk.0.attn_norm.weight": (n_embd,),
        "blk.0.attn_q.weight": (n_embd, n_embd),
        "blk.0.attn_k.weight": (n_embd, n_embd),
        "blk.0.attn_v.weight": (n_embd, n_embd),
        "blk.0.attn_output.weight": (n_embd, n_embd),
        "blk.0.ffn_norm.weight": (n_embd,),
        "blk.0.ffn_gate.weight": (n_ff, n_embd),
        "blk.0.ffn_up.weight": (n_ff, n_embd),
        "blk.0.ffn_down.weight": (n_embd, n_ff),
    }
    tensors = {name: np.zeros(shape, dtype=np.float32) for name, shape in shapes.items()}
    # every token embeds to ones, the final norm keeps it, and row i of the output reads it as -0.01 * i:
    # the logits rank the tokens by id, with no ties left to the sampler's tie-breaking
    tensors["token_embd.weight"][:] = 1.0
    tensors["output_norm.weight"][:] = 1.0
    logits = -0.01 * np.arange(n_vocab, dtype=np.float32)
    logits[:2] = -100.0  # <unk> and <s> last: llama.cpp's grammar lets <unk> (printed as a block) into strings
    tensors["output.weight"][:] = (logits / n_embd)[:, None]
    tensors["blk.0.attn_norm.weight"][:] = 1.0
    tensors["blk.0.ffn_norm.weight"][:] = 1.0
    for name, array in tensors.items():
        w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="GGUF file to write")
    args = parser.parse_args(argv)
    try:
        path = write_tiny_gguf(args.out)
    except ImportError:
        print("needs the gguf package: pip install 'tianji[llamacpp]'", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
