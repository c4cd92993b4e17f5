"""The issue's applications: a route with an id in its path.

    routes_app:flask_app       Flask, /users/<int:uid>    (gunicorn)
    routes_app:starlette_app   Starlette, /users/{uid:int} (uvicorn)
Each answer allocates a little, so that the scope has a peak."""
import flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

flask_app = flask.Flask("routes_app")


@flask_app.route("/users/<int:uid>")
def user(uid):
    rows = [bytearray(4096) for _ in range(64)]
    return "user %d (%d)\n" % (uid, len(rows))


async def starlette_user(request):
    rows = [bytearray(4096) for _ in range(64)]
    return PlainTextResponse("user %d (%d)\n" % (request.path_params["uid"], len(rows)))


starlette_app = Starlette(routes=[Route("/users/{uid:int}", starlette_user)])
