"""The lean GGUF header reader says what gguf's own reader says (metadata, array lengths, parameter count) without
reading the vocabulary item by item, and refuses files that are not GGUF or end inside their header."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFReader, GGUFWriter

from app.engine import catalog
from app.engine.gguf_header import read_gguf_header
from app.engine.model_files import describe_gguf


def shipped_gguf() -> Path:
    return catalog.gguf_file()


def written_gguf(path: Path) -> Path:
    """A small GGUF with every kind of value: scalars, a string, arrays of strings, numbers and arrays."""
    import numpy as np

    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_context_length(4096)
    writer.add_embedding_length(8)
    writer.add_string("general.license", "mit")
    writer.add_float32("test.float", 0.5)
    writer.add_bool("test.flag", True)
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "a", "bé", ""])
    writer.add_array("test.numbers", [1, 2, 3])
    writer.add_array("test.nested", [[1, 2], [3]])
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("which", ["shipped", "written"])
def test_the_header_matches_ggufs_own_reader(which, tmp_path):
    path = shipped_gguf() if which == "shipped" else written_gguf(tmp_path / "m.gguf")
    header = read_gguf_header(path)
    reader = GGUFReader(path)
    for key, found in reader.fields.items():
        if key.startswith("GGUF."):
            continue  # the reader's own view of the file's first fields
        contents = found.contents()
        if key == "test.nested":
            assert header.array_lengths[key] == 2  # gguf's reader flattens arrays of arrays: [[1, 2], [3]]
        elif isinstance(contents, list):
            assert header.array_lengths[key] == len(contents), key
        else:
            assert header.metadata[key] == pytest.approx(contents), key
    assert header.n_tensors == len(reader.tensors)
    assert header.n_elements == sum(int(t.n_elements) for t in reader.tensors)


def test_describe_gguf_reads_the_facts_of_the_shipped_model():
    facts = describe_gguf(shipped_gguf())
    assert (facts.architecture, facts.layers, facts.hidden_size, facts.vocab_size) == ("llama", 30, 576, 49152)
    assert facts.parameters == 134_515_008 and facts.licence == "apache-2.0"


def test_files_that_are_not_whole_gguf_headers_are_refused(tmp_path):
    png = tmp_path / "image.gguf"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match="not a GGUF file"):
        read_gguf_header(png)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(written_gguf(tmp_path / "whole.gguf").read_bytes()[:120])
    with pytest.raises(ValueError):
        read_gguf_header(cut)
