"""Clients of tests/integration/refusal_kinds.py; print one JSON line.

    refusal_kinds_client.py grpc PORT SERVICE_CONFIG_JSON
        each method called once through a channel with the service config
        (retries on), then the server's counts;
    refusal_kinds_client.py http PORT
        each path called once: status and Retry-After, then the counts."""
import json
import sys
import urllib.error
import urllib.request


def grpc_client(port, config_path):
    import grpc

    with open(config_path) as f:
        config = f.read()
    ch = grpc.insecure_channel("127.0.0.1:%s" % port,
                               options=[("grpc.service_config", config),
                                        ("grpc.enable_retries", 1)])
    grpc.channel_ready_future(ch).result(timeout=30)
    out = {}
    for m in ("Huge", "Budgeted", "Flaky"):
        try:
            ch.unary_unary("/modelserver.Features/%s" % m)(b"x", timeout=30)
            out[m] = {"code": "OK"}
        except grpc.RpcError as e:
            out[m] = {"code": e.code().name,
                      "pushback": dict(e.trailing_metadata() or ()).get("grpc-retry-pushback-ms")}
    out["runs"] = json.loads(ch.unary_unary("/modelserver.Features/Count")(b"", timeout=30))
    return out


def http_call(url, data=None):
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return {"code": r.status, "retry_after": r.headers.get("Retry-After")}
    except urllib.error.HTTPError as e:
        return {"code": e.code, "retry_after": e.headers.get("Retry-After")}


def http_client(port):
    base = "http://127.0.0.1:%s" % port
    out = {"huge": http_call(base + "/huge"),
           "upload": http_call(base + "/upload", b"x" * 4096),
           "flaky": http_call(base + "/flaky")}
    with urllib.request.urlopen(base + "/count", timeout=30) as r:
        out["runs"] = json.loads(r.read())
    return out


if __name__ == "__main__":
    if sys.argv[1] == "grpc":
        print(json.dumps(grpc_client(sys.argv[2], sys.argv[3])))
    else:
        print(json.dumps(http_client(sys.argv[2])))
