"""The service process: probes without a token, 401/403 rules, the error shape, metrics, OpenAPI."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(180)


def test_probes_need_no_token(service):
    with service.client(None) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["down"] == []


def test_401_without_or_with_bad_token(service):
    with service.client(None) as c:
        r = c.get("/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"]["type"] == "Unauthorized"
    with service.client("mrt_000000000000_" + "x" * 43) as c:
        assert c.get("/metrics").status_code == 401


def test_revoked_and_expired_tokens_refused(service):
    from mapred.service.tokens import TokenStore
    tok = service.token("eve")
    with service.client(tok) as c:
        assert c.get("/metrics").status_code == 200
        TokenStore(service.token_file).revoke(tok)
        r = c.get("/metrics")
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    short = service.token("eve", expires_in=0.001)
    with service.client(short) as c:
        r = c.get("/metrics")
        assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_unknown_route_is_404_in_shape(service):
    with service.client() as c:
        r = c.get("/no/such/route")
        assert r.status_code == 404 and r.json()["error"]["message"] == "no route GET /no/such/route"


def test_metrics_names_and_cluster_gauges(service):
    with service.client() as c:
        c.get("/healthz")
        text = c.get("/metrics").text
    assert 'mapred_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "mapred_http_request_duration_seconds_bucket" in text
    assert 'mapred_http_refusals_total{reason="missing_token"}' in text or "mapred_http_refusals" in text
    assert 'mapred_workers{state="live"} 1.0' in text
    assert 'mapred_datanodes{state="live"} 2.0' in text
    assert 'mapred_up{component="master"} 1.0' in text and 'mapred_up{component="namenode"} 1.0' in text
    assert "mapred_store_capacity_bytes" in text and 'mapred_store_blocks{health="corrupt"}' in text


def test_metric_names_follow_prometheus_conventions(service):
    from prometheus_client.parser import text_string_to_metric_families
    with service.client() as c:
        c.get("/api/v1/jobs")
        text = c.get("/metrics").text
    families = list(text_string_to_metric_families(text))
    assert families
    for fam in families:
        assert fam.name.startswith("mapred_"), fam.name
        for sample in fam.samples:
            assert not {"job", "job_id", "path", "user"} & set(sample.labels), sample
            if fam.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name
        if "seconds" in fam.name or "bytes" in fam.name:
            assert fam.name.endswith(("_seconds", "_bytes")), fam.name
    routes = {s.labels["route"] for f in families if f.name == "mapred_http_requests" for s in f.samples
              if "route" in s.labels}
    assert "/api/v1/jobs" in routes and all("{" in r or r.count("/") < 6 for r in routes)


def _get_on(sock, path: str) -> int:
    """Send ``GET path`` on an open keep-alive connection; read the whole answer; return its status."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: service\r\n\r\n".encode())
    raw = b""
    while b"\r\n\r\n" not in raw:
        got = sock.recv(65536)
        assert got, "the service closed the connection instead of answering"
        raw += got
    head, body = raw.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1])


@pytest.mark.timeout(60)
def test_idle_connection_outlives_client_pool_expiry(service):
    """A pooled connection idle for longer than httpx keeps one (5 s) is still open on the service.

    A server that drops idle connections as soon as (or before) clients stop reusing them races
    the next request sent on one: the client sees "server disconnected" instead of an answer.
    """
    import select
    import socket
    import time
    from urllib.parse import urlsplit
    u = urlsplit(service.url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        assert _get_on(sock, "/healthz") == 200
        time.sleep(6.0)
        readable, _, _ = select.select([sock], [], [], 0)
        assert not readable, "the service closed an idle connection within 6 s"
        assert _get_on(sock, "/healthz") == 200
