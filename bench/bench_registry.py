"""The registry of models and datasets: throughput of a 200 MB artifact, and catalog queries
over 100,000 versions.

Throughput: a 200 MB file (random bytes, written to a temporary directory and deleted after)
is pushed and pulled on both artifact stores, ``file`` (local disk) and ``s3`` (moto's S3
server in its own process, standing in for MinIO), at two levels:

- ``catalog``: the library (`harmonia.registry.catalog.Catalog`) in this process: the
  store's streaming, sha256 and the version row, without HTTP;
- ``http``: ``harmonia serve`` in its own process and `CatalogClient` here: a multipart
  upload streamed from the file, and a download streamed to a file and checked against the
  ``X-Checksum-Sha256`` header, as ``harmonia models push|pull`` do. The server's peak RSS
  after the transfers shows that the artifact never sat in its memory whole.

Queries: 100,000 versions (1,000 models of 100 versions in 10 domains, tagged, half the
models with staging and production aliases, a few grants) are written straight into a fresh
SQLite database; then each query kind runs ``--queries`` times with random arguments, in the
library (the store's reads) and over HTTP (the server's routes, with a domain key), and its
p50/p99 are reported against the target: p99 under 20 ms.

    .venv/bin/python bench/bench_registry.py [--size-mb 200] [--queries 2000]

Prints a table and writes ``build/bench/registry.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from harmonia.registry.artifacts import ArtifactStore, open_artifact_store
from harmonia.registry.catalog import Catalog
from harmonia.registry.client import CatalogClient
from harmonia.store import Store, sqlite_url

ADMIN = "bench-admin"
MB = 1_000_000
OUT = Path("build/bench/registry.json")
DOMAINS = 10
MODELS_PER_DOMAIN = 100
VERSIONS_PER_MODEL = 100
TAGS = ("edge", "cloud", "beta", "stable", "gpu")
TARGET_P99_MS = 20.0
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer: see {log}")
        time.sleep(0.1)


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path, ready: str) -> Iterator[int]:
    """A child process (its output in ``log``), once ``ready`` answers; yields its pid."""
    with log.open("wb") as output:
        child = subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(ready, child, log)
        yield child.pid
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def moto_s3(workdir: Path) -> Iterator[str]:
    """moto's S3 server on a free port, with a bucket ``harmonia``; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    os.environ.update({k: os.environ.get(k, v) for k, v in S3_CREDENTIALS.items()})
    moto = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with process(moto, dict(os.environ), workdir / "moto.log", f"{url}/"):
        import boto3

        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(
            Bucket="harmonia"
        )
        yield url


@contextlib.contextmanager
def server(data_dir: Path, store_uri: str, s3_url: str) -> Iterator[tuple[str, int]]:
    """``harmonia serve`` on ``data_dir`` (its SQLite database) and ``store_uri``."""
    port = free_port()
    env = {
        **os.environ,
        "HARMONIA_DATA_DIR": str(data_dir),
        "HARMONIA_DATABASE_URL": sqlite_url(data_dir),
        "HARMONIA_ADMIN_TOKEN": ADMIN,
        "HARMONIA_ARTIFACT_STORE": store_uri,
        "HARMONIA_S3_ENDPOINT_URL": s3_url,
        "HARMONIA_MAX_ARTIFACT_BYTES": str(4 * 1024**3),
    }
    args = [sys.executable, "-m", "harmonia.cli", "serve", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with process(args, env, data_dir / "server.log", f"{url}/healthz") as pid:
        yield url, pid


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (Linux's VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        return None
    return None


def make_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            n = min(left, 8 * 1024 * 1024)
            out.write(os.urandom(n))
            left -= n


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            yield chunk


def timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call(*args, **kwargs)
    return time.perf_counter() - start, result


# -- throughput --------------------------------------------------------------------------------
def catalog_throughput(artifacts: ArtifactStore, data: Path, workdir: Path) -> dict[str, float]:
    store = Store(sqlite_url(workdir / f"catalog-{artifacts.scheme}"))
    store.create_org("acme", by="bench")
    store.create_domain("vendor", "acme", by="bench")
    catalog = Catalog(store, artifacts, max_bytes=4 * 1024**3)
    size = data.stat().st_size
    up, found = timed(lambda: catalog.push("vendor", "model", "big", file_chunks(data), by="b"))
    target = workdir / "pulled.bin"

    def pull() -> None:
        with target.open("wb") as out:
            for chunk in catalog.open(found):
                out.write(chunk)

    down, _ = timed(pull)
    target.unlink()
    catalog.delete("vendor", "model", "big", found.version, by="b")
    store.close()
    return {"upload_mb_s": size / MB / up, "download_mb_s": size / MB / down}


def http_throughput(url: str, pid: int, data: Path, workdir: Path) -> dict[str, Any]:
    size = data.stat().st_size
    before = peak_rss_mb(pid)
    with CatalogClient(url, ADMIN, timeout=600) as client:
        httpx.post(
            f"{url}/api/v1/orgs",
            json={"name": "acme"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        httpx.post(
            f"{url}/api/v1/domains",
            json={"name": "vendor", "org": "acme"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        up, pushed = timed(lambda: client.push("vendor", "model", "big", data))
        target = workdir / "pulled.bin"
        down, _ = timed(lambda: client.pull("vendor", "model", "big", pushed["version"], target))
        target.unlink()
    return {
        "upload_mb_s": size / MB / up,
        "download_mb_s": size / MB / down,
        "server_peak_rss_mb_before": before,
        "server_peak_rss_mb": peak_rss_mb(pid),
    }


# -- queries -----------------------------------------------------------------------------------
def fill(url: str, seed: int = 0) -> None:
    """100,000 versions written straight into the tables, as many uploads would leave them."""
    from sqlalchemy import insert, select

    from harmonia.store.tables import (
        ArtifactAliasRow,
        ArtifactGrantRow,
        ArtifactRow,
        ArtifactTagRow,
        ArtifactVersionRow,
        DomainRow,
    )

    rng = random.Random(seed)
    store = Store(url)
    store.create_org("acme", by="bench")
    for d in range(DOMAINS):
        store.create_domain(f"domain-{d}", "acme", by="bench")
    now = time.time()
    with store.engine.begin() as sql:
        domain_ids = dict(sql.execute(select(DomainRow.name, DomainRow.id)).all())
        artifacts = [
            {
                "domain_id": domain_ids[f"domain-{d}"],
                "kind": "model",
                "name": f"model-{m}",
                "next_version": VERSIONS_PER_MODEL + 1,
                "created": now,
                "created_by": "bench",
            }
            for d in range(DOMAINS)
            for m in range(MODELS_PER_DOMAIN)
        ]
        sql.execute(insert(ArtifactRow), artifacts)
        named = sql.execute(select(ArtifactRow.id, ArtifactRow.name).order_by(ArtifactRow.id)).all()
        artifact_ids = [i for i, _ in named]
        with_aliases = [i for i, name in named if int(name.split("-")[1]) % 2 == 0]
        versions = [
            {
                "artifact_id": a,
                "version": v,
                "label": f"1.{v}",
                "location": f"model/{a}-{v}",
                "size": 1000,
                "sha256": "0" * 64,
                "filename": "model.bin",
                "media_type": "application/octet-stream",
                "created": now + v,
                "created_by": "bench",
                "details": {"quality": {"r2": rng.random()}},
            }
            # uploads interleave over time: each model's next version comes after the others'
            for v in range(1, VERSIONS_PER_MODEL + 1)
            for a in artifact_ids
        ]
        sql.execute(insert(ArtifactVersionRow), versions)
        rows = sql.execute(
            select(
                ArtifactVersionRow.id, ArtifactVersionRow.artifact_id, ArtifactVersionRow.version
            )
        ).all()
        sql.execute(
            insert(ArtifactTagRow), [{"version_id": i, "tag": rng.choice(TAGS)} for i, _, _ in rows]
        )
        by_artifact = {(a, v): i for i, a, v in rows}
        aliases = []
        for a in with_aliases:
            aliases.append(
                {"artifact_id": a, "alias": "production", "version_id": by_artifact[(a, 90)]}
            )
            aliases.append(
                {"artifact_id": a, "alias": "staging", "version_id": by_artifact[(a, 100)]}
            )
        sql.execute(insert(ArtifactAliasRow), aliases)
        grants = [
            {
                "artifact_id": a,
                "domain_id": domain_ids["domain-1"],
                "granted": now,
                "granted_by": "b",
            }
            for a in artifact_ids[:MODELS_PER_DOMAIN:5]
        ]
        sql.execute(insert(ArtifactGrantRow), grants)
    store.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": 1e3 * statistics.median(ordered),
        "p99_ms": 1e3 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def query_kinds(rng: random.Random) -> dict[str, Callable[[], tuple[str, dict[str, Any]]]]:
    """Each query kind: a random (library call, HTTP path and params) pair."""

    def pick() -> tuple[str, str]:
        return f"domain-{rng.randrange(DOMAINS)}", f"model-{rng.randrange(MODELS_PER_DOMAIN)}"

    def latest() -> tuple[str, dict[str, Any]]:
        d, m = pick()
        return f"/domains/{d}/models/{m}/versions/latest", {}

    def alias() -> tuple[str, dict[str, Any]]:  # every other model has aliases
        d = f"domain-{rng.randrange(DOMAINS)}"
        m = f"model-{2 * rng.randrange(MODELS_PER_DOMAIN // 2)}"
        return f"/domains/{d}/models/{m}/versions/{rng.choice(['production', 'staging'])}", {}

    def by_name() -> tuple[str, dict[str, Any]]:
        d, m = pick()
        return "/catalog", {"domain": d, "name": m, "limit": 20}

    def by_tag() -> tuple[str, dict[str, Any]]:
        return "/catalog", {"domain": pick()[0], "tag": rng.choice(TAGS), "limit": 50}

    def by_status() -> tuple[str, dict[str, Any]]:
        return "/catalog", {"status": "production", "limit": 50}

    def everything() -> tuple[str, dict[str, Any]]:
        return "/catalog", {"limit": 100}

    return {
        "version: latest": latest,
        "version: by alias": alias,
        "search: domain + name": by_name,
        "search: domain + tag": by_tag,
        "search: status production": by_status,
        "search: newest 100": everything,
    }


def library_call(store: Store, path: str, params: dict[str, Any], readers: list[str] | None) -> Any:
    """What the route ``path`` asks the store, called directly."""
    if path == "/catalog":
        return store.search_artifact_versions(readers=readers, kind="model", **params)
    _, _, domain, _, name, _, ref = path.split("/")
    return store.artifact_version(domain, "model", name, ref)


def query_latency(url: str, data_dir: Path, queries: int) -> dict[str, Any]:
    """p50/p99 per query kind, in the library and over HTTP (the admin token reads all;
    a key of ``domain-1`` reads its own and what was granted to it)."""
    rng = random.Random(1)
    kinds = query_kinds(rng)
    store = Store(sqlite_url(data_dir))
    out: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30) as http:
        for name, make in kinds.items():
            library, remote = [], []
            for _ in range(queries):
                path, params = make()
                took, _ = timed(library_call, store, path, params, None)
                library.append(took)
                took, reply = timed(http.get, path, params=params)
                assert reply.status_code == 200, reply.text
                remote.append(took)
            out[name] = {"library": percentiles(library), "http": percentiles(remote)}
        key = store.create_key("domain-1", "read", by="bench")[1]
        reader = {"Authorization": f"Bearer {key}"}
        library, remote = [], []
        for _ in range(queries):
            params = {"tag": rng.choice(TAGS), "limit": 50}
            took, _ = timed(library_call, store, "/catalog", params, ["domain-1"])
            library.append(took)
            took, reply = timed(http.get, "/catalog", params=params, headers=reader)
            assert reply.status_code == 200, reply.text
            remote.append(took)
        out["search: a key's readable, by tag"] = {
            "library": percentiles(library),
            "http": percentiles(remote),
        }
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    size = args.size_mb * MB
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "artifact_mb": args.size_mb,
        "throughput": {},
    }
    with tempfile.TemporaryDirectory(prefix="harmonia-bench-registry-") as tmp:
        workdir = Path(tmp)
        data = workdir / "artifact.bin"
        make_file(data, size)
        with moto_s3(workdir) as s3_url:
            for backend in ("file", "s3"):
                uri = (
                    (workdir / "artifacts-catalog").as_uri()
                    if backend == "file"
                    else "s3://harmonia/catalog"
                )
                store = open_artifact_store(uri, {"s3": {"endpoint_url": s3_url}})
                level = {"catalog": catalog_throughput(store, data, workdir)}
                data_dir = workdir / f"server-{backend}"
                data_dir.mkdir()
                uri = (
                    (data_dir / "artifacts").as_uri() if backend == "file" else "s3://harmonia/http"
                )
                with server(data_dir, uri, s3_url) as (url, pid):
                    level["http"] = http_throughput(url, pid, data, workdir)
                results["throughput"][backend] = level
                print(f"{backend}: {json.dumps(level)}", flush=True)
        data.unlink()
        data_dir = workdir / "queries"
        data_dir.mkdir()
        started = time.perf_counter()
        fill(sqlite_url(data_dir))
        results["fill_seconds"] = time.perf_counter() - started
        results["versions"] = DOMAINS * MODELS_PER_DOMAIN * VERSIONS_PER_MODEL
        with server(data_dir, (data_dir / "artifacts").as_uri(), "") as (url, _):
            results["queries"] = query_latency(url, data_dir, args.queries)
        shutil.rmtree(data_dir, ignore_errors=True)
    report(results)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


def report(results: dict[str, Any]) -> None:
    print(f"\n{results['artifact_mb']} MB artifact (MB/s)")
    header = "server peak RSS (before)"
    print(f"{'store':<6} {'level':<8} {'upload':>8} {'download':>9}  {header}")
    for backend, levels in results["throughput"].items():
        for level, figures in levels.items():
            rss = figures.get("server_peak_rss_mb")
            before = figures.get("server_peak_rss_mb_before")
            print(
                f"{backend:<6} {level:<8} {figures['upload_mb_s']:>8.1f} "
                f"{figures['download_mb_s']:>9.1f}  "
                + ("" if rss is None else f"{rss:.0f} MB ({before:.0f} MB)")
            )
    print(f"\ncatalog queries over {results['versions']:,} versions (ms; target p99 < 20)")
    print(f"{'query':<36} {'lib p50':>8} {'lib p99':>8} {'http p50':>9} {'http p99':>9}")
    for name, figures in results["queries"].items():
        lib, http = figures["library"], figures["http"]
        flag = "" if http["p99_ms"] < TARGET_P99_MS else "  over target"
        print(
            f"{name:<36} {lib['p50_ms']:>8.2f} {lib['p99_ms']:>8.2f} "
            f"{http['p50_ms']:>9.2f} {http['p99_ms']:>9.2f}{flag}"
        )


if __name__ == "__main__":
    main()
