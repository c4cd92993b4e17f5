"""What naming an HTTP request by its route costs (memfence._respond.Routes
with the application's router, memfence._routes): the naming call alone,
per request, for a Flask app and a Starlette app of 21 routes (the request
matches the last one) and for the raw path (no router).

    PYTHONPATH=build/python /usr/bin/python3 bench/route_naming.py [ROUNDS] [CALLS]

Prints the best of ROUNDS (default 5) runs of CALLS (default 20000) calls,
in µs per call, one line each. Needs python3-flask and python3-starlette.
"""
import sys
import timeit

import flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from memfence import _routes
from memfence._respond import Routes

N = 21


def flask_app():
    app = flask.Flask("bench")
    for i in range(N - 1):
        app.add_url_rule("/r%d/<int:x>" % i, "r%d" % i, lambda x: "")
    app.add_url_rule("/users/<int:uid>", "user", lambda uid: "")
    return app


def starlette_app():
    async def page(request):
        return PlainTextResponse("")
    routes = [Route("/r%d/{x:int}" % i, page) for i in range(N - 1)]
    return Starlette(routes=routes + [Route("/users/{uid:int}", page)])


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/users/7", "SERVER_NAME": "localhost",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "SCRIPT_NAME": ""}
    scope = {"type": "http", "method": "GET", "path": "/users/7", "root_path": ""}
    cases = [
        ("flask, 21 rules", Routes(template=_routes.wsgi_resolver(flask_app())), environ),
        ("starlette, 21 routes", Routes(template=_routes.asgi_resolver(starlette_app())), scope),
        ("raw path", Routes(), None),
    ]
    for label, routes, request in cases:
        name = routes.name("GET", "/users/7", request)
        best = min(timeit.repeat(lambda: routes.name("GET", "/users/7", request),
                                 number=calls, repeat=rounds))
        print("%-22s %7.2f µs  (%s)" % (label, best / calls * 1e6, name))


if __name__ == "__main__":
    main()
