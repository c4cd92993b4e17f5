"""Route templates for HTTP scope names: "GET /users/<int:uid>", not one
name per id. The name is needed before the application runs (the admission
gate and the budget go by it), so the application's own router is asked
ahead of it: Flask's url_map and Django's URL resolver (WSGI), Starlette's
and FastAPI's routes (ASGI). A router that matches nothing gives "" (the request goes to the
bounded "other" name); an application of another kind gives no resolver,
and raw paths are used, bounded by max_routes."""

import sys

# Layers a server or the user may put around the application (proxy-header
# middlewares, a Flask app's wsgi_app) that keep it as an attribute.
_DEPTH = 8


def _layers(app):
    for _ in range(_DEPTH):
        if app is None:
            return
        yield app
        owner = getattr(app, "__self__", None)    # a bound wsgi_app method
        if owner is not None and owner is not app:
            yield owner
        app = getattr(app, "app", None)


def _find(app, attr, method):
    """The first layer's attr that has method (a router), else None."""
    for a in _layers(app):
        found = getattr(a, attr, None)
        if found is not None and hasattr(found, method):
            return found
    return None


def wsgi_resolver(app):
    """template(environ) for a Flask or Django application inside app, else
    None."""
    url_map = _find(app, "url_map", "bind_to_environ")
    if url_map is not None:
        return _flask(url_map)
    return _django(app)


def _flask(url_map):
    def template(environ):
        try:
            rule, _args = url_map.bind_to_environ(environ).match(return_rule=True)
            return rule.rule
        except Exception:    # NotFound, MethodNotAllowed, a redirect
            return ""
    return template


def _django(app):
    # Only where Django is loaded already: asking would import it.
    handlers = sys.modules.get("django.core.handlers.wsgi")
    if handlers is None or not any(isinstance(a, handlers.WSGIHandler) for a in _layers(app)):
        return None
    from django.urls import resolve

    def template(environ):
        # The project's ROOT_URLCONF, as Django resolves a request without
        # a per-request urlconf; "route" is the path() pattern, includes
        # joined ("users/<int:uid>"), or a re_path()'s regular expression.
        try:
            route = resolve(environ.get("PATH_INFO") or "/").route
        except Exception:    # Resolver404, a broken urlconf
            return ""
        return "/" + route if route else ""
    return template


def asgi_resolver(app):
    """template(scope) for a Starlette or FastAPI application inside app,
    else None."""
    router = _find(app, "router", "url_path_for")
    routes = getattr(router, "routes", None)
    return _starlette(routes) if routes is not None else None


def _starlette(routes):
    def template(scope):
        # Mounts are walked into, so that a sub-application's template is
        # the whole path ("/api" + "/users/{uid:int}").
        prefix, items = "", routes
        for _ in range(_DEPTH):
            for r in items:
                try:
                    match, child = r.matches(scope)
                except Exception:
                    continue
                if match.name != "FULL":
                    continue
                sub = getattr(r, "routes", None)
                if sub:
                    prefix += r.path
                    scope = dict(scope, **child)
                    items = sub
                    break
                return prefix + r.path
            else:
                return ""
        return ""
    return template
