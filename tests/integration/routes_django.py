"""The issue's application in Django: /users/<int:uid> (gunicorn,
routes_django:django_app). Each answer allocates a little, so that the
scope has a peak."""
import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

settings.configure(DEBUG=False, ALLOWED_HOSTS=["127.0.0.1", "localhost"], ROOT_URLCONF=__name__,
                   SECRET_KEY="memfence-test", MIDDLEWARE=[], INSTALLED_APPS=[])


def user(request, uid):
    rows = [bytearray(4096) for _ in range(64)]
    return HttpResponse("user %d (%d)\n" % (uid, len(rows)), content_type="text/plain")


def started(request):
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [path("users/<int:uid>", user), path("started", started)]

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402  (after setup)

django_app = get_wsgi_application()
