"""pgvector backend on the embedded PostgreSQL server: correctness against brute force, sweeps,
cleanup (normal exit, exception, SIGKILL of the parent then a rerun), the DSN path, clear errors."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

pytest.importorskip("psycopg")
pytest.importorskip("pgserver")

from harness.ann.recall import ann_recall, exact_neighbours  # noqa: E402
from harness.core import registry  # noqa: E402
from harness.core.context import RunContext  # noqa: E402
from harness.testing import clustered_unit_vectors  # noqa: E402
from harness.core.errors import ConfigError  # noqa: E402
from harness.engines import postgres  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data():
    X, Q = clustered_unit_vectors(5, 800, 16, 10, 30)
    return X, Q, exact_neighbours(X, Q, 10)


@pytest.fixture
def pg_root(tmp_path, monkeypatch):
    """Embedded servers of this test in their own root (short path: Unix socket names are
    limited to 107 bytes)."""
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="hpg-", dir="/tmp"))
    monkeypatch.setenv("HARNESS_PG_ROOT", str(root))
    monkeypatch.delenv(postgres.DSN_ENV, raising=False)
    yield root
    import shutil
    shutil.rmtree(root, ignore_errors=True)


def make(tmp_path, **params):
    plugin = registry.get("ann", "pgvector")
    return plugin.factory(plugin.params(**params), RunContext(cache_dir=tmp_path, threads=1))


def postgres_pids(root: Path) -> list[int]:
    """Running postgres processes whose command line names a directory under `root`."""
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if "postgres" in (p.info["name"] or "") or any("postgres" in c for c in p.info["cmdline"] or []):
                if str(root) in " ".join(p.info["cmdline"] or []):
                    found.append(p.pid)
        except psutil.Error:
            pass
    return found


def test_exact_matches_brute_force_and_the_table_is_dropped(tmp_path, pg_root, data):
    X, Q, (exact_ids, exact_scores) = data
    index = make(tmp_path, kind="exact")
    index.build(X)
    ids, scores = index.search(Q, 10)
    np.testing.assert_array_equal(ids, exact_ids)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    stats = index.build_stats()
    assert stats["ingest_rows_per_s"] > 0 and stats["index_build_wall_s"] == 0.0
    assert stats["server_rss_bytes"] > 0 and index.nbytes() > X.nbytes
    other = make(tmp_path, kind="exact")  # a second user of the same embedded server
    other.build(X[:10])
    assert other._server is index._server
    count = "SELECT count(*) FROM pg_tables WHERE tablename = %s"
    assert other._conn.execute(count, (index.table,)).fetchone()[0] == 1
    index.close()
    assert other._conn.execute(count, (index.table,)).fetchone()[0] == 0  # dropped
    server = other._server
    other.close()
    assert postgres._shared is None and not server.dir.exists()  # last user gone: server stopped
    assert postgres_pids(pg_root) == []


def test_hnsw_and_ivfflat_search_their_index_and_sweep_search_params(tmp_path, pg_root, data):
    X, Q, (exact_ids, exact_scores) = data
    hnsw = make(tmp_path, kind="hnsw", m=16, ef_construction=64, ef_search=100)
    hnsw.build(X)
    ids, scores = hnsw.search(Q, 10)
    assert ann_recall(ids, X, Q, exact_ids, exact_scores, 10).mean() >= 0.95
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", Q, X[ids]), atol=1e-4)
    assert hnsw.build_stats()["index_build_wall_s"] > 0
    plan = hnsw._client._conn.execute(
        f"EXPLAIN SELECT id FROM {hnsw.table} ORDER BY embedding <#> %(q)s LIMIT 10",
        {"q": Q[0]}).fetchall()
    assert "Index Scan" in str(plan)  # not a sequential scan on this small table

    ivf = make(tmp_path, kind="ivfflat", lists=20, probes=1)
    ivf.build(X)
    low = ann_recall(ivf.search(Q, 10)[0], X, Q, exact_ids, exact_scores, 10).mean()
    ivf.set_search_params(probes=20)
    full = ann_recall(ivf.search(Q, 10)[0], X, Q, exact_ids, exact_scores, 10).mean()
    assert low < full == 1.0
    hnsw.close(), ivf.close()


def test_sweep_points_are_named_without_connection_settings():
    from harness.ann.sweep import parse_sweep, point_name
    spec = parse_sweep({"type": "pgvector", "build": {"kind": "hnsw", "ef_construction": [64, 200],
                                                      "dsn": "host=/x password=secret"},
                        "search": {"ef_search": [16, 40]}}, k=10)
    assert len(spec.build_points) == 2 and len(spec.search_points) == 2
    name = point_name("pgvector", spec.build_points[0] | spec.search_points[0], "dense")
    assert name == "dense/pgvector[kind=hnsw,efC=64,ef=16]"
    with pytest.raises(ConfigError, match=r"search.ef_search: 5 < k=10"):
        parse_sweep({"type": "pgvector", "search": {"ef_search": 5}}, k=10)


def test_dsn_path_keep_and_dimension_mismatch(tmp_path, pg_root, data):
    X, Q, _ = data
    server = postgres.EmbeddedPostgres()
    try:
        index = make(tmp_path, kind="exact", dsn=server.dsn, keep=True)
        index.build(X)
        assert index._server is None and postgres._shared is None  # no embedded server started
        np.testing.assert_array_equal(index.search(Q, 5)[0], exact_neighbours(X, Q, 5)[0])
        with pytest.raises(ConfigError, match=r"holds 16-dimensional vectors but the queries have 8"):
            index.search(Q[:, :8], 5)
        table = index.table
        index.close()
        import psycopg
        with psycopg.connect(server.dsn) as conn:  # keep: true leaves the table
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == len(X)
        os.environ[postgres.DSN_ENV] = server.dsn  # the environment variable works the same
        try:
            env_index = make(tmp_path, kind="exact")
            env_index.build(X[:50])
            assert env_index._server is None
            env_index.close()
        finally:
            del os.environ[postgres.DSN_ENV]
    finally:
        server.stop()
    assert not server.dir.exists() and postgres_pids(pg_root) == []


def test_unreachable_dsn_and_missing_extension_are_clear(tmp_path, pg_root, data):
    X, _, _ = data
    with pytest.raises(ConfigError, match=r"(?s)unreachable.*check dsn: / \$HARNESS_PG_DSN"):
        make(tmp_path, dsn=f"host={pg_root} port=1 user=x dbname=x connect_timeout=2").build(X)
    server = postgres.EmbeddedPostgres()
    try:
        import psycopg
        with psycopg.connect(server.dsn, autocommit=True) as conn:  # a role that may not add it
            conn.execute("CREATE ROLE plain LOGIN PASSWORD 'pw'")
            conn.execute("CREATE DATABASE noext OWNER plain")
        dsn = f"host={server.socket_dir} port={server.port} user=plain password=pw dbname=noext"
        with pytest.raises(ConfigError, match=r"(?s)pgvector extension is not available.*install pgvector"):
            make(tmp_path, dsn=dsn).build(X)
    finally:
        server.stop()


def test_missing_binaries_and_socket_in_use_are_clear(pg_root, monkeypatch, tmp_path):
    first = postgres.EmbeddedPostgres()
    try:
        with pytest.raises(postgres.PostgresError, match=r"socket .*\.s\.PGSQL\.5432 is in use"):
            postgres.EmbeddedPostgres(socket_dir=first.socket_dir)
    finally:
        first.stop()
    import pgserver._commands
    monkeypatch.setattr(pgserver._commands, "POSTGRES_BIN_PATH", tmp_path / "nowhere")
    with pytest.raises(postgres.PostgresError, match=r"PostgreSQL binary missing.*set dsn:"):
        postgres.EmbeddedPostgres()
    assert postgres_pids(pg_root) == [] and not list(pg_root.glob("harness-pg-*"))


CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from harness.core import registry
    from harness.core.context import RunContext
    from harness.engines import postgres
    plugin = registry.get("ann", "pgvector")
    index = plugin.factory(plugin.params(kind="hnsw"), RunContext())
    index.build(np.random.default_rng(0).standard_normal((100, 8)).astype("float32"))
    print(json.dumps({"dir": str(index._server.dir), "pid": index._server.pid}), flush=True)
    mode = sys.argv[1]
    if mode == "raise":
        raise RuntimeError("boom")
    if mode == "hang":
        time.sleep(600)
""")


def run_child(mode: str, pg_root: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_PG_ROOT": str(pg_root)}
    return subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


@pytest.mark.parametrize("mode", ["exit", "raise"])
def test_nothing_is_left_after_a_normal_exit_or_an_exception(pg_root, mode):
    child = run_child(mode, pg_root)
    out, err = child.communicate(timeout=120)
    assert child.returncode == (1 if mode == "raise" else 0), err
    info = json.loads(out.splitlines()[0])
    assert not Path(info["dir"]).exists()
    assert not psutil.pid_exists(info["pid"]) and postgres_pids(pg_root) == []


def _build_in_worker(queue):
    index = make(Path("/tmp"), kind="exact")
    index.build(np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32))
    queue.put(str(index._server.dir))
    globals()["_held"] = index  # still referenced when the worker ends


def test_a_forkserver_worker_stops_its_server_on_exit(pg_root):
    """Process isolation's workers end with os._exit (no atexit): the server must stop anyway."""
    import multiprocessing as mp
    ctx = mp.get_context("forkserver")
    queue = ctx.Queue()
    worker = ctx.Process(target=_build_in_worker, args=(queue,))
    worker.start()
    directory = Path(queue.get(timeout=120))
    worker.join(timeout=60)
    assert worker.exitcode == 0 and not directory.exists() and postgres_pids(pg_root) == []


def test_sigkill_of_the_parent_leaves_no_server_and_the_next_start_cleans_up(pg_root):
    child = run_child("hang", pg_root)
    info = json.loads(child.stdout.readline())
    assert psutil.pid_exists(info["pid"])
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    deadline = time.monotonic() + 30
    while postgres_pids(pg_root) and time.monotonic() < deadline:  # SIGQUIT from the kernel
        time.sleep(0.1)
    assert postgres_pids(pg_root) == []
    assert Path(info["dir"]).exists()  # the stale directory stays until the next start
    server = postgres.EmbeddedPostgres()
    try:
        assert not Path(info["dir"]).exists()
    finally:
        server.stop()
    assert postgres_pids(pg_root) == [] and not list(pg_root.glob("harness-pg-*"))


def test_run_exact_pgvector_equals_flat_and_records_build_stats(tiny_beir, tmp_path, pg_root,
                                                               tmp_path_factory):
    from harness import config as config_mod
    from harness.execution.benchmark import run_benchmark
    from test_runner import timing_rows
    from tiny_models import tiny_sentence_transformer
    model = str(tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "model"))
    cfg = config_mod.validate({
        "name": "pg", "dataset": {"name": str(tiny_beir)}, "k": 5, "isolation": "none",
        "measures": ["nDCG@5"], "timing": {"latency_queries": 2, "warmup": 1},
        "pipelines": [{"name": "dense", "retriever": {"type": "dense", "model": model, "index": [
            {"type": "flat"}, {"type": "pgvector", "build": {"kind": "exact"}},
            {"type": "pgvector", "build": {"kind": "hnsw", "m": 4},
             "search": {"ef_search": [5, 10]}}]}}]})
    out = run_benchmark(cfg, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    assert all(r.error is None for r in out.results), [r.error for r in out.results]
    ev = out.evaluations
    assert ev["dense/flat"].aggregate["nDCG@5"] == ev["dense/pgvector[kind=exact]"].aggregate["nDCG@5"]
    assert ev["dense/pgvector[kind=hnsw,m=4,ef=10]"].aggregate["ann_recall@5"] == 1.0
    rows = timing_rows(out.out_dir)
    build = {stat for (p, stage, mode, stat) in rows
             if (p, stage, mode) == ("dense/pgvector[kind=hnsw,m=4,ef=5]", "index", "build")}
    assert {"ingest_rows_per_s", "ingest_wall_s", "index_build_wall_s", "size_bytes",
            "server_rss_bytes"} <= build
    assert ("dense/pgvector[kind=hnsw,m=4,ef=5]", "ann_search", "single", "p99_ms") in rows
    del out
    import gc
    gc.collect()  # the run's memo held the last index: once freed, the server stops
    postgres.release(None)
    assert postgres._shared is None and postgres_pids(pg_root) == []


def allowed_sets(n, rng):
    """Allowed sets of ~30% and ~2% of the rows, and one of 4 rows (fewer than k)."""
    from harness.filters.allowed import AllowedSet
    sets = []
    for i, frac in enumerate([0.3, 0.02]):
        sets.append(AllowedSet(f"s{i}", rng.random(n) < frac))
    tiny = np.zeros(n, dtype=bool)
    tiny[[3, 99, 500, 777]] = True
    return sets + [AllowedSet("tiny", tiny)]


def test_filtered_search_is_a_sql_pre_filter_with_iterative_index_scans(tmp_path, pg_root, data):
    from harness.ann.recall import filtered_exact_neighbours, result_flags
    X, Q, _ = data
    sets = allowed_sets(len(X), np.random.default_rng(3))
    exact = make(tmp_path, kind="exact")
    exact.build(X)
    hnsw = make(tmp_path, kind="hnsw", m=16, ef_construction=64, ef_search=40)
    hnsw.build(X)
    assert type(hnsw).FILTER_MODE == "pre"
    assert hnsw.build_stats()["filter_iterative_scan"] == "relaxed_order"
    for allowed in sets:
        truth_ids, truth_scores = filtered_exact_neighbours(X, Q, 10, [allowed.rows] * len(Q))
        ids, scores = exact.search_filtered(Q, 10, allowed)
        np.testing.assert_array_equal(ids, truth_ids)
        np.testing.assert_allclose(scores, truth_scores, atol=1e-5)
        ids, scores = hnsw.search_filtered(Q, 10, allowed)
        found = ids >= 0
        assert np.isin(ids[found], allowed.rows).all()
        # The iterative scan goes on past ef_search=40 candidates: at 2% (16 allowed rows of 800)
        # a plain HNSW scan would keep almost none; none is short of min(k, allowed).
        assert (found.sum(1) == min(10, allowed.size)).all(), allowed.key
        assert ann_recall(ids, X, Q, truth_ids, truth_scores, 10).mean() >= 0.9, allowed.key
        assert (np.diff(scores[:, :min(10, allowed.size)], axis=1) <= 1e-6).all()  # re-sorted
        rows = np.nonzero(found)[0]
        np.testing.assert_allclose(scores[found], np.einsum("nd,nd->n", Q[rows], X[ids[found]]),
                                   atol=1e-4)
    conn = hnsw._client._conn
    assert conn.execute("SHOW hnsw.iterative_scan").fetchone()[0] == "off"  # only while filtered
    plan = conn.execute(f"EXPLAIN SELECT id FROM {hnsw.table} WHERE id + 0 = ANY(%(ids)s) "
                        f"ORDER BY embedding <#> %(q)s LIMIT 10",
                        {"q": Q[0], "ids": sets[2].cache["pgvector"]}).fetchall()
    assert "embedding_idx" in str(plan)  # the HNSW index, not the primary key and a sort

    ivf = make(tmp_path, kind="ivfflat", lists=20, probes=1)
    ivf.build(X)
    rare = sets[1]
    ids, _ = ivf.search_filtered(Q, 10, rare)
    assert ((ids >= 0).sum(1) == 10).all()  # iterative scan probes more lists
    # Capped at the configured list (no iteration): the rare rows are mostly elsewhere, so
    # queries come back short, padded with -1 and counted, never hidden.
    ivf._client._conn.execute("SET ivfflat.max_probes = 1")
    ids, _ = ivf.search_filtered(Q, 10, rare)
    short = int(((ids >= 0).sum(1) < 10).sum())
    assert short > 0 and result_flags(ids, 10)["short"] == short
    assert np.isin(ids[ids >= 0], rare.rows).all()
    exact.close(), hnsw.close(), ivf.close()
