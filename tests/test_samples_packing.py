"""samples.packing documents on the real Wikipedia excerpt: whole documents packed into rows with their
boundaries kept, masked as segments are, fed to the modern type as document_ids, refused by the others."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.test_samples import SPEC, build, originals, small_part, text_part  # noqa: F401  (fixtures)
from workflow_scripts.data import packing, samples, shard_format
from workflow_scripts.errors import BadInput

CLS, SEP = 101, 102


@pytest.fixture(scope="module")
def packed(text_part, bert_tokenizer_dir, tmp_path_factory):  # noqa: F811
    """(train arrays, valid arrays, counts, train path) of the demo part packed at 128 tokens."""
    tmp = tmp_path_factory.mktemp("packed")
    train, valid, counts = build(tmp, text_part, bert_tokenizer_dir, packing="documents", valid_fraction=0.05)
    return shard_format.load_shard(train), shard_format.load_shard(valid), counts, train


@pytest.fixture(scope="module")
def document_tokens(text_part, bert_tokenizer_dir):  # noqa: F811
    """Each document's token ids, by its number in the part (all kept: min_chars_per_token 0)."""
    tokenizer, _ = samples.load_tokenizer(bert_tokenizer_dir)
    corpus, status = samples.tokenize_documents(tokenizer, list(samples.read_documents(text_part)))
    assert (status == samples.KEPT).all()
    spans = zip(corpus.sent[corpus.doc[:-1]], corpus.sent[corpus.doc[1:]], strict=True)
    return [corpus.tokens[a:b] for a, b in spans]


def runs(ids, docs):
    """(document number, token ids between its [CLS] and [SEP]) for every document run of every row."""
    out = []
    for row_ids, row_docs in zip(ids, docs, strict=True):
        starts = np.flatnonzero((row_docs >= 0) & np.r_[True, row_docs[1:] != row_docs[:-1]])
        ends = np.r_[starts[1:], (row_docs >= 0).sum()]
        for a, b in zip(starts, ends, strict=True):
            assert row_ids[a] == CLS and row_ids[b - 1] == SEP, "each document in a row is [CLS] ... [SEP]"
            out.append((int(row_docs[a]), row_ids[a + 1:b - 1]))
    return out


def test_every_document_kept_whole_and_in_order(packed, document_tokens):
    """The runs named by each id are exactly its document's tokens, cut at multiples of a row, none lost:
    no row mixes one document's tokens into another's id."""
    train, valid, _, _ = packed
    cap = SPEC["max_seq_length"] - 2
    got = {}
    for arrays in (train, valid):
        for doc, tokens in runs(originals(arrays), arrays[shard_format.TOKEN_DOCUMENTS.name]):
            got.setdefault(doc, []).append(tokens.tobytes())
    assert sorted(got) == list(range(len(document_tokens)))   # every document, train or valid, once (dup 1)
    for doc, tokens in enumerate(document_tokens):
        expected = sorted(tokens[k:k + cap].tobytes() for k in range(0, len(tokens), cap))
        assert sorted(got[doc]) == expected, f"document {doc}"


def test_ids_change_exactly_at_document_boundaries(packed):
    train = packed[0]
    ids, docs, mask = originals(train), train[shard_format.TOKEN_DOCUMENTS.name], train["input_mask"]
    assert ((docs >= 0) == (mask == 1)).all() and (ids[:, 0] == CLS).all()
    change = (docs[:, 1:] != docs[:, :-1]) & (mask[:, 1:] == 1)
    boundary = (ids[:, :-1] == SEP) & (ids[:, 1:] == CLS)
    assert (change == boundary).all()
    assert (train["document_index"] == docs[:, 0]).all()       # a row counts as its first document
    assert (train["segment_ids"] == 0).all() and "next_sentence_labels" not in train


def test_masking_as_segments_never_specials(packed):
    train = packed[0]
    ids = originals(train)
    n = (train["masked_lm_positions"] > 0).sum(axis=1)
    rows = np.repeat(np.arange(len(ids)), n)
    picked = train["masked_lm_positions"][train["masked_lm_positions"] > 0]
    assert not np.isin(ids[rows, picked], [CLS, SEP, 0]).any()
    candidates = train["input_mask"].sum() - 2 * packing.document_runs(train[shard_format.TOKEN_DOCUMENTS.name]).sum()
    assert abs(n.sum() / candidates - SPEC["masked_lm_prob"]) < 0.01


def test_padding_far_below_segments(text_part, bert_tokenizer_dir, tmp_path, packed):  # noqa: F811
    _, _, _, packed_train = packed
    segments_train, _, _ = build(tmp_path, text_part, bert_tokenizer_dir, valid_fraction=0.05)
    fraction = {}
    for mode, path in (("segments", segments_train), ("documents", packed_train)):
        mask = shard_format.load_shard(path)["input_mask"]
        fraction[mode] = 1 - mask.mean()
    print(f"padding fraction on the demo part at 128 tokens: segments {fraction['segments']:.4f}, "
          f"documents {fraction['documents']:.4f}")
    assert fraction["documents"] < fraction["segments"] / 10


def test_passes_pack_differently_and_builds_are_reproducible(small_part, bert_tokenizer_dir, tmp_path):  # noqa: F811
    a = shard_format.load_shard(build(tmp_path, small_part, bert_tokenizer_dir, "a", packing="documents",
                                      dup_factor=2, max_seq_length=64)[0])
    b = shard_format.load_shard(build(tmp_path, small_part, bert_tokenizer_dir, "b", packing="documents",
                                      dup_factor=2, max_seq_length=64)[0])
    assert all((a[k] == b[k]).all() for k in a)
    docs = a[shard_format.TOKEN_DOCUMENTS.name]
    by_pass = [{tuple(r) for r in docs[a["pass_index"] == p]} for p in (0, 1)]
    assert by_pass[0] != by_pass[1]                             # a fresh random order each pass


def test_nsp_cannot_be_packed(small_part, bert_tokenizer_dir, tmp_path):  # noqa: F811
    with pytest.raises(BadInput, match=r"samples.nsp: true cannot go with samples.packing: documents"):
        build(tmp_path, small_part, bert_tokenizer_dir, packing="documents", nsp=True)


def damaged_copy(path, tmp_path, name, damage):
    """A copy of the shard whose token_document_ids went through damage(ids [N, L], input_mask [N, L])."""
    import h5py

    copy = tmp_path / f"{name}.h5"
    copy.write_bytes(path.read_bytes())
    with h5py.File(copy, "r+") as f:
        docs = f[shard_format.TOKEN_DOCUMENTS.name][()]
        damage(docs, f["input_mask"][()])
        f[shard_format.TOKEN_DOCUMENTS.name][...] = docs
    return copy


def test_validator_refuses_broken_document_ids(packed, tmp_path):
    path = packed[3]

    def on_padding(docs, mask):
        row = int(np.flatnonzero((mask == 0).any(axis=1))[0])
        docs[row, np.argmax(mask[row] == 0)] = docs[row, 0]

    def two_runs(docs, mask):
        row = int(np.flatnonzero(packing.document_runs(docs) >= 2)[0])
        docs[row, 0] = docs[row, mask[row].sum() - 1]             # its first token joins its last document

    with pytest.raises(shard_format.ShardError, match="not >= 0 exactly on its real tokens"):
        shard_format.load_shard(damaged_copy(path, tmp_path, "padding", on_padding))
    with pytest.raises(shard_format.ShardError, match="holds a document in two runs"):
        shard_format.load_shard(damaged_copy(path, tmp_path, "runs", two_runs))


def test_the_loader_feeds_document_ids_and_the_modern_model_uses_them(packed):
    """Batches of packed shards carry document_ids; the model's logits change with them, and with them each
    document of a packed row reads as if it were alone in its row."""
    from tests.test_pretrain_modern import tiny
    from workflow_scripts.pretrain import batches

    train_path = str(packed[3])
    batch = next(batches.TrainStream([train_path], 0, 1, 8, 1, seed=0).epoch(0))
    assert batch["document_ids"].shape == batch["input_ids"].shape
    model = tiny()
    with torch.no_grad():
        loss, _, n = model(**batch)
    assert n > 0 and torch.isfinite(loss)

    train = packed[0]
    i = int(np.flatnonzero(packing.document_runs(train[shard_format.TOKEN_DOCUMENTS.name]) >= 2)[0])
    ids, mask, docs = (torch.from_numpy(train[k][i:i + 1]).long() for k in
                       ("input_ids", "input_mask", shard_format.TOKEN_DOCUMENTS.name))
    types = torch.zeros_like(ids)
    with torch.no_grad():
        apart = model.logits(model.encode(ids, types, mask, docs))[0]
        joined = model.logits(model.encode(ids, types, mask))[0]
        assert not torch.allclose(apart[mask[0].bool()], joined[mask[0].bool()], atol=1e-3)
        for doc in docs[0][mask[0].bool()].unique():
            where = torch.nonzero(docs[0] == doc).squeeze(1)
            alone = ids[:, where]
            logits = model.logits(model.encode(alone, torch.zeros_like(alone), torch.ones_like(alone)))[0]
            torch.testing.assert_close(apart[where], logits, atol=2e-4, rtol=1e-4)


def test_other_model_types_refuse_packed_shards(packed):
    from workflow_scripts.pretrain import train

    args = SimpleNamespace(train=[str(packed[3])], valid=[str(packed[3])])
    with pytest.raises(BadInput, match=r"model.type bert would attend across the documents of a packed row: set "
                                       r"samples.packing: segments, or model.type modernbert"):
        train.load_data(args, {"type": "bert", "max_position_embeddings": 512}, SimpleNamespace(rank=0, world=1),
                        8, 1, 0, 16)
    stream, valid = train.load_data(args, {"type": "modernbert", "max_position_embeddings": 512},
                                    SimpleNamespace(rank=0, world=1), 8, 1, 0, 16)
    assert "document_ids" in valid.batches[0]


def test_documents_seen_counts_every_document_of_packed_rows(small_part, bert_tokenizer_dir, tmp_path):  # noqa: F811
    """Short documents share rows: the loader counts every document a row holds, on a resume too."""
    from workflow_scripts.pretrain import batches

    short = tmp_path / "short.txt"   # the first two sentences of each document: several per row
    short.write_text("\n\n".join("\n".join(d[:2]) for d in samples.read_documents(small_part)) + "\n")
    path = build(tmp_path, short, bert_tokenizer_dir, packing="documents", valid_fraction=0.0, dup_factor=2)[0]
    train = shard_format.load_shard(path)
    docs = train[shard_format.TOKEN_DOCUMENTS.name]
    stream = batches.TrainStream([str(path)], 0, 1, 2, 1, seed=0)
    assert stream.documents == len(np.unique(docs[docs >= 0])) > len(np.unique(train["document_index"]))
    read = set()
    for batch in stream.epoch(0):
        ids = batch["document_ids"].numpy()
        read |= set(ids[ids >= 0].tolist())
    assert stream.documents_seen == len(read)
    resumed = batches.TrainStream([str(path)], 0, 1, 2, 1, seed=0)
    for _ in resumed.epoch(0, start=stream.micro_per_epoch // 2):
        pass
    assert resumed.documents_seen == len(read)
