"""A tiny Llama-shaped model directory for offline CPU runs (no weights, no hub).

The directory holds a ``config.json``, a byte-level BPE tokenizer trained on the
spot from a few sentences, and its config files. vLLM serves it with
``--load-format dummy`` (random weights), so outputs are gibberish, but every
scheduling path is real. The head size is 32, one of the sizes vLLM's CPU
attention backend supports; the vocabulary size always equals the tokenizer's.
Positions go up to 128k so ``--max-model-len`` can be set as long as a workload needs
(the KV cache, not the model, bounds it: 1 KiB per token, see ``autellix serve``).

``ensure_tiny_model()`` is idempotent: it writes into a temporary directory and
renames it into place, so concurrent callers and interrupted runs never leave a
half-written model behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

VERSION = 2  # bump when the files below change, to rebuild cached copies
MAX_POSITIONS = 131072  # room for any context a replayed agent trace asks for (128k)
# versioned: old checkouts keep theirs
DEFAULT_DIR = Path(f"~/.cache/autellix/tiny-llama-v{VERSION}")
_MARKER = "autellix-tiny-model.json"

_SPECIAL = ("<s>", "</s>", "<pad>")
_TEXT = (
    "An agent plans, calls a tool, reads the result and asks the model again.",
    "Short programs should not wait behind long ones: least attained service first.",
    "queue level quantum priority starvation batch engine gateway program thread",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 the a an of to in is and or not",
)
_CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                  "{% if add_generation_prompt %}assistant:{% endif %}")


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def _build(out: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(_SPECIAL),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(_TEXT) * 16, trainer)
    bos, eos, pad = (tok.token_to_id(t) for t in _SPECIAL)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    tok.save(str(out / "tokenizer.json"))
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_POSITIONS,
        "add_bos_token": True, "chat_template": _CHAT_TEMPLATE, **special})
    _write_json(out / "special_tokens_map.json", special)
    n_vocab = tok.get_vocab_size()
    _write_json(out / "config.json", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 32,
        "vocab_size": n_vocab, "max_position_embeddings": MAX_POSITIONS, "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "bos_token_id": bos, "eos_token_id": eos,
        "pad_token_id": pad})
    _write_json(out / "generation_config.json", {"bos_token_id": bos, "eos_token_id": eos})
    _write_json(out / _MARKER, {"version": VERSION, "vocab_size": n_vocab})


def _is_current(path: Path) -> bool:
    try:
        meta = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("version") == VERSION and (path / "config.json").is_file() \
        and (path / "tokenizer.json").is_file()


def ensure_tiny_model(path: str | os.PathLike | None = None, vocab_size: int = 1024) -> Path:
    """Return a directory holding the tiny model, writing it first if needed."""
    target = Path(path if path is not None else DEFAULT_DIR).expanduser().resolve()
    if _is_current(target):
        return target
    if target.exists() and not (target.is_dir() and ((target / _MARKER).exists()
                                                      or not any(target.iterdir()))):
        raise FileExistsError(f"{target} exists and is not an autellix tiny model; "
                              "choose an empty or new directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-llama-", dir=target.parent))
    try:
        _build(tmp, vocab_size)
        if target.exists():
            if _is_current(target):  # another process won the race
                return target
            shutil.rmtree(target)  # an older version of ours, or empty
        try:
            os.replace(tmp, target)
        except OSError:
            if not _is_current(target):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


if __name__ == "__main__":  # python -m autellix.vllm.tiny_model [DIR]
    import sys

    print(ensure_tiny_model(sys.argv[1] if len(sys.argv) > 1 else None))
